"""NAR (Nix ARchive) serialisation, byte-identical to ``nix-store --dump``, and its SHA-256.

Streaming: files are read in 1 MiB chunks, so hashing a large store path needs bounded
memory.  Only the owner-execute bit of a regular file is recorded, as Nix does.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from collections.abc import Callable

from sbomgen.errors import NarError

_CHUNK = 1 << 20
_PACK = struct.Struct("<Q").pack


def _str(data: bytes) -> bytes:
    """A NAR string: little-endian u64 length, the bytes, zero padding to 8."""
    return _PACK(len(data)) + data + b"\0" * (-len(data) % 8)


_MAGIC = _str(b"nix-archive-1")
_OPEN, _CLOSE = _str(b"("), _str(b")")
_TYPE = _str(b"type")
_REGULAR, _SYMLINK, _DIRECTORY = _str(b"regular"), _str(b"symlink"), _str(b"directory")
_EXECUTABLE = _str(b"executable") + _str(b"")
_CONTENTS, _TARGET = _str(b"contents"), _str(b"target")
_ENTRY, _NAME, _NODE = _str(b"entry"), _str(b"name"), _str(b"node")


def _dump(path: bytes, write: Callable[[bytes], object]) -> None:
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise NarError(f"cannot read {os.fsdecode(path)}: {exc.strerror or exc}") from None
    mode = st.st_mode
    if stat.S_ISREG(mode):
        header = _OPEN + _TYPE + _REGULAR
        if mode & stat.S_IXUSR:
            header += _EXECUTABLE
        write(header + _CONTENTS + _PACK(st.st_size))
        remaining = st.st_size
        try:
            with open(path, "rb") as handle:
                while remaining > 0:
                    chunk = handle.read(min(_CHUNK, remaining))
                    if not chunk:
                        break
                    write(chunk)
                    remaining -= len(chunk)
        except OSError as exc:
            raise NarError(f"cannot read {os.fsdecode(path)}: {exc.strerror or exc}") from None
        if remaining:
            raise NarError(f"{os.fsdecode(path)} changed size while it was read")
        write(b"\0" * (-st.st_size % 8) + _CLOSE)
    elif stat.S_ISLNK(mode):
        write(_OPEN + _TYPE + _SYMLINK + _TARGET + _str(os.readlink(path)) + _CLOSE)
    elif stat.S_ISDIR(mode):
        write(_OPEN + _TYPE + _DIRECTORY)
        try:
            names = sorted(os.listdir(path))
        except OSError as exc:
            raise NarError(f"cannot list {os.fsdecode(path)}: {exc.strerror or exc}") from None
        for name in names:
            write(_ENTRY + _OPEN + _NAME + _str(name) + _NODE)
            _dump(path + b"/" + name, write)
            write(_CLOSE)
        write(_CLOSE)
    else:
        raise NarError(f"cannot put {os.fsdecode(path)} in a NAR: not a regular file, directory or symlink")


def dump(path: str | os.PathLike, write: Callable[[bytes], object]) -> None:
    """Serialise ``path`` as a NAR, passing the bytes to ``write`` in order."""
    write(_MAGIC)
    _dump(os.fsencode(path), write)


class _Counter:
    __slots__ = ("hasher", "size")

    def __init__(self) -> None:
        self.hasher = hashlib.sha256()
        self.size = 0

    def __call__(self, data: bytes) -> None:
        self.hasher.update(data)
        self.size += len(data)


def nar_hash(path: str | os.PathLike) -> tuple[bytes, int]:
    """SHA-256 digest and size in bytes of the NAR serialisation of ``path``."""
    counter = _Counter()
    dump(path, counter)
    return counter.hasher.digest(), counter.size


def nar_sha256_hex(path: str | os.PathLike) -> str:
    return nar_hash(path)[0].hex()
