"""NAR (Nix ARchive) serialisation, byte-identical to ``nix-store --dump``, and its SHA-256.

A NAR is a sequence of strings, each a little-endian u64 length, the bytes and zero padding
to a multiple of 8.  A node is ``( type regular [executable ""] contents <data> )``,
``( type symlink target <target> )`` or ``( type directory (entry ( name <n> node <node> ))* )``
with entries sorted by name as bytes.  Only the owner-execute bit of a regular file is
recorded; times, owners and other mode bits are not.

Streaming: a file is read in 1 MiB chunks, so a store path of any size is hashed in bounded
memory.  Headers and small files are gathered into one buffer that is handed on once it
holds 1 MiB, so ``write`` (and SHA-256) see few, large pieces, however many small files
the tree has.  The walk is iterative: directory depth is not limited by Python's stack.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable

from sbomgen.errors import NarError

_CHUNK = 1 << 20
"""Read size for file contents, and the size at which gathered bytes are handed on."""
_SMALL = 1 << 16
"""Files smaller than this are gathered with the headers; larger ones go to ``write`` directly."""


def _str(data: bytes) -> bytes:
    """A NAR string: little-endian u64 length, the bytes, zero padding to a multiple of 8."""
    return len(data).to_bytes(8, "little") + data + b"\0" * (-len(data) % 8)


_MAGIC = _str(b"nix-archive-1")
_CLOSE = _str(b")")
_FILE_HEADER = _str(b"(") + _str(b"type") + _str(b"regular") + _str(b"contents")
_EXECUTABLE_HEADER = _str(b"(") + _str(b"type") + _str(b"regular") + _str(b"executable") + _str(b"") + _str(b"contents")
_SYMLINK_HEADER = _str(b"(") + _str(b"type") + _str(b"symlink") + _str(b"target")
_DIRECTORY_HEADER = _str(b"(") + _str(b"type") + _str(b"directory")
_ENTRY = _str(b"entry") + _str(b"(") + _str(b"name")
_NODE = _str(b"node")
#: what follows file contents of size n: padding to 8, then ")", indexed by n % 8
_FILE_TRAILER = [b"\0" * (-n % 8) + _CLOSE for n in range(8)]

_DIR, _LINK, _FILE = 0, 1, 2
# O_NONBLOCK: should a fifo take a listed file's place, open() must not wait for a writer
_O_READ = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_open, _read, _close, _fstat = os.open, os.read, os.close, os.fstat


def _fail(action: str, path: bytes, exc: OSError) -> NarError:
    return NarError(f"cannot {action} {os.fsdecode(path)}: {exc.strerror or exc}")


def _kind(path: bytes, mode: int) -> int:
    """``_FILE``, ``_DIR`` or ``_LINK``; :class:`NarError` for any other type of file."""
    if stat.S_ISREG(mode):
        return _FILE
    if stat.S_ISDIR(mode):
        return _DIR
    if stat.S_ISLNK(mode):
        return _LINK
    kinds = ((stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"))
    kind = next((name for test, name in kinds if test(mode)), "block device" if stat.S_ISBLK(mode) else "special file")
    raise NarError(f"cannot put {os.fsdecode(path)} in a NAR: it is a {kind}, not a regular file, directory or symlink")


def _entries(path: bytes) -> list[tuple[bytes, int]]:
    """The entries of a directory, sorted by name as bytes, each with its kind.

    ``scandir`` knows the kind from the directory itself (``d_type``); it falls back to
    ``lstat`` where the file system does not say.
    """
    try:
        with os.scandir(path) as it:
            entries = []
            for entry in it:
                if entry.is_symlink():
                    kind = _LINK
                elif entry.is_dir(follow_symlinks=False):
                    kind = _DIR
                elif entry.is_file(follow_symlinks=False):
                    kind = _FILE
                else:
                    kind = _kind(entry.path, entry.stat(follow_symlinks=False).st_mode)
                entries.append((entry.name, kind))
    except OSError as exc:
        raise _fail("list", path, exc) from None
    entries.sort()
    return entries


class _Writer:
    """Gathers small pieces in ``buffer`` and hands them to ``write`` about 1 MiB at a time.

    With ``copy`` false (for hashing, where ``write`` keeps nothing) ``write`` gets the
    buffer itself, which is then cleared and refilled, instead of a copy.
    """

    __slots__ = ("buffer", "copy", "write")

    def __init__(self, write: Callable[[bytes], object], copy: bool = True) -> None:
        self.write = write
        self.copy = copy
        self.buffer = bytearray()

    def flush(self) -> None:
        """Hand on what is gathered."""
        if self.buffer:
            self.write(bytes(self.buffer) if self.copy else self.buffer)  # type: ignore[arg-type]
            self.buffer.clear()


def _regular(path: bytes, out: _Writer) -> None:
    """Add a regular file's node: gathered if small, else streamed in 1 MiB chunks."""
    try:
        fd = _open(path, _O_READ)
    except OSError as exc:
        raise _fail("read", path, exc) from None
    buffer = out.buffer
    try:
        st = _fstat(fd)
        mode = st.st_mode
        if not stat.S_ISREG(mode):  # replaced since its directory was listed
            _kind(path, mode)
            raise NarError(f"cannot put {os.fsdecode(path)} in a NAR: it changed while it was read")
        size = st.st_size
        buffer += _EXECUTABLE_HEADER if mode & stat.S_IXUSR else _FILE_HEADER
        buffer += size.to_bytes(8, "little")
        remaining = size
        if size < _SMALL:
            while remaining:
                chunk = _read(fd, remaining)
                if not chunk:
                    break
                buffer += chunk
                remaining -= len(chunk)
        else:
            out.flush()
            write = out.write
            while remaining:
                chunk = _read(fd, min(remaining, _CHUNK))
                if not chunk:
                    break
                write(chunk)
                remaining -= len(chunk)
    except OSError as exc:
        raise _fail("read", path, exc) from None
    finally:
        _close(fd)
    if remaining:
        raise NarError(f"cannot put {os.fsdecode(path)} in a NAR: it shrank while it was read")
    buffer += _FILE_TRAILER[size & 7]


def _symlink(path: bytes, out: _Writer) -> None:
    """Add a symlink's node."""
    try:
        target = os.readlink(path)
    except OSError as exc:
        raise _fail("read symlink", path, exc) from None
    out.buffer += _SYMLINK_HEADER + _str(target) + _CLOSE


def _dump(root: bytes, out: _Writer) -> None:
    try:
        kind = _kind(root, os.lstat(root).st_mode)
    except OSError as exc:
        raise _fail("read", root, exc) from None
    buffer = out.buffer
    buffer += _MAGIC
    if kind == _FILE:
        _regular(root, out)
    elif kind == _LINK:
        _symlink(root, out)
    else:
        buffer += _DIRECTORY_HEADER
        # one (directory path, iterator over its sorted entries) per open directory
        stack = [(root + b"/", iter(_entries(root)))]
        while stack:
            prefix, entries = stack[-1]
            for name, kind in entries:
                buffer += _ENTRY
                buffer += _str(name)
                buffer += _NODE
                if kind == _FILE:
                    _regular(prefix + name, out)
                elif kind == _LINK:
                    _symlink(prefix + name, out)
                else:
                    buffer += _DIRECTORY_HEADER
                    stack.append((prefix + name + b"/", iter(_entries(prefix + name))))
                    break  # descend; this directory's iterator resumes afterwards
                buffer += _CLOSE  # the entry
                if len(buffer) >= _CHUNK:
                    out.flush()
            else:
                stack.pop()
                buffer += _CLOSE  # the directory node
                if stack:
                    buffer += _CLOSE  # the entry holding it
    out.flush()


def dump(path: str | os.PathLike[str] | bytes, write: Callable[[bytes], object]) -> None:
    """Serialise ``path`` as a NAR, exactly as ``nix-store --dump`` does, passing the bytes
    to ``write`` in order, in pieces of about 1 MiB (a little over 1 MiB + 64 KiB at most).

    Raises :class:`~sbomgen.errors.NarError` (naming the path) for a missing or unreadable
    path and for anything but regular files, directories and symlinks (fifos, sockets,
    devices).  A symlink is recorded, never followed, even at the top.
    """
    _dump(os.fsencode(path), _Writer(write))


def nar_hash(path: str | os.PathLike[str] | bytes) -> tuple[bytes, int]:
    """SHA-256 digest and size in bytes of the NAR serialisation of ``path``.

    These are what the store DB records as ``narHash`` and ``narSize``.  Raises
    :class:`~sbomgen.errors.NarError` as :func:`dump` does.
    """
    hasher = hashlib.sha256()
    update = hasher.update
    size = 0

    def write(data: bytes) -> None:
        nonlocal size
        update(data)
        size += len(data)

    _dump(os.fsencode(path), _Writer(write, copy=False))
    return hasher.digest(), size


def nar_sha256_hex(path: str | os.PathLike[str] | bytes) -> str:
    """The SHA-256 of the NAR serialisation of ``path``, in hex."""
    return nar_hash(path)[0].hex()


class TreeNode:
    """One node of a file tree held in memory (e.g. parsed from an image layer), for
    :func:`dump_tree`: a directory (``children``: name as bytes -> node), a regular file
    (``executable``, ``size``; its bytes come from the ``contents`` callback) or a symlink
    (``target`` as bytes). ``layer`` and ``data``/``offset`` are for the caller's bookkeeping."""

    __slots__ = ("children", "data", "executable", "kind", "layer", "offset", "size", "target")

    DIRECTORY, REGULAR, SYMLINK = _DIR, _FILE, _LINK

    def __init__(self, kind: int, layer: int = 0, *, executable: bool = False, size: int = 0, target: bytes = b"",
                 data: bytes | None = None, offset: int = 0) -> None:
        self.kind = kind
        self.layer = layer
        self.executable = executable
        self.size = size
        self.target = target
        self.children: dict[bytes, TreeNode] | None = {} if kind == _DIR else None
        self.data = data
        self.offset = offset


def dump_tree(root: TreeNode, write: Callable[[bytes], object], contents: Callable[[TreeNode], object]) -> None:
    """Serialise an in-memory tree as a NAR, exactly as ``nix-store --dump`` would serialise
    the same tree on disk. ``contents(node)`` yields a regular file's bytes (in any number of
    pieces, ``node.size`` in all: anything else is a :class:`NarError`). Nothing on the file
    system is touched; a symlink is its target, never followed. Iterative: any depth."""
    out = _Writer(write)
    buffer = out.buffer

    def regular(node: TreeNode) -> None:
        buffer.extend(_EXECUTABLE_HEADER if node.executable else _FILE_HEADER)
        buffer.extend(node.size.to_bytes(8, "little"))
        seen = 0
        for chunk in contents(node):  # type: ignore[attr-defined]
            seen += len(chunk)
            buffer.extend(chunk)
            if len(buffer) >= _CHUNK:
                out.flush()
        if seen != node.size:
            raise NarError(f"file content is {seen} bytes, {node.size} expected")
        buffer.extend(_FILE_TRAILER[node.size & 7])

    def leaf(node: TreeNode) -> None:
        if node.kind == _FILE:
            regular(node)
        else:
            buffer.extend(_SYMLINK_HEADER + _str(node.target) + _CLOSE)

    buffer += _MAGIC
    if root.kind != _DIR:
        leaf(root)
    else:
        buffer += _DIRECTORY_HEADER
        stack = [iter(sorted(root.children.items()))]  # type: ignore[union-attr]
        while stack:
            for name, node in stack[-1]:
                buffer += _ENTRY
                buffer += _str(name)
                buffer += _NODE
                if node.kind == _DIR:
                    buffer += _DIRECTORY_HEADER
                    stack.append(iter(sorted(node.children.items())))  # type: ignore[union-attr]
                    break
                leaf(node)
                buffer += _CLOSE
                if len(buffer) >= _CHUNK:
                    out.flush()
            else:
                stack.pop()
                buffer += _CLOSE
                if stack:
                    buffer += _CLOSE
    out.flush()


__all__ = ["TreeNode", "dump", "dump_tree", "nar_hash", "nar_sha256_hex"]
