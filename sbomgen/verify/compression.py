"""Sniffing and opening possibly compressed files (gzip; zstd through the zstd tool)."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from sbomgen.errors import ArchiveError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_OS_NAMES = {0: "FAT", 3: "Unix", 7: "Macintosh", 11: "NTFS", 255: "unknown"}


def sniff(path: str) -> str:
    """``gzip``, ``zstd``, ``tar`` (ustar/gnu magic) or ``other``."""
    with open(path, "rb") as handle:
        head = handle.read(512)
    if head[:2] == GZIP_MAGIC:
        return "gzip"
    if head[:4] == ZSTD_MAGIC:
        return "zstd"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    return "other"


def gzip_header(path: str) -> dict[str, str]:
    """The fields of a gzip member header that vary between otherwise equal files."""
    with open(path, "rb") as handle:
        head = handle.read(10)
        if len(head) < 10 or head[:2] != GZIP_MAGIC:
            raise ArchiveError(f"{path}: truncated gzip header")
        flags, mtime, xfl, os_byte = head[3], struct.unpack("<I", head[4:8])[0], head[8], head[9]
        name = ""
        if flags & 0x04:  # FEXTRA
            (length,) = struct.unpack("<H", handle.read(2))
            handle.read(length)
        if flags & 0x08:  # FNAME
            raw = bytearray()
            while (byte := handle.read(1)) not in (b"", b"\0"):
                raw += byte
            name = raw.decode("latin-1")
    return {"mtime": str(mtime), "os": f"{os_byte} ({_OS_NAMES.get(os_byte, '?')})", "xfl": str(xfl), "name": name}


class HashingReader:
    """A read-only stream that hashes (SHA-256) and counts what passes through it."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.hasher = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.hasher.update(data)
        self.size += len(data)
        return data

    def drain(self) -> str:
        while self.read(1 << 20):
            pass
        return self.hasher.hexdigest()


@contextmanager
def open_decompressed(path: str) -> Iterator[BinaryIO]:
    """The decompressed bytes of ``path`` as a stream (plain files as they are)."""
    kind = sniff(path)
    if kind == "gzip":
        with gzip.open(path, "rb") as stream:
            yield stream
    elif kind == "zstd":
        tool = shutil.which("zstd")
        if tool is None:
            raise ArchiveError(f"{path} is zstd-compressed and the zstd tool is not installed")
        proc = subprocess.Popen([tool, "-dc", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            yield proc.stdout
        finally:
            # A reader that stops early (a 512-byte sniff) must not turn zstd's broken pipe
            # into "corrupt input": if zstd is still running, it was us who stopped.
            stopped_early = proc.poll() is None and proc.stdout.read(1) != b""
            if stopped_early:
                proc.kill()
            proc.stdout.close()
            code = proc.wait()
            if code != 0 and not stopped_early:
                raise ArchiveError(f"{path}: zstd: {proc.stderr.read().decode(errors='replace').strip() or 'corrupt input'}")
    else:
        with open(path, "rb") as stream:
            yield stream


#: what a truncated or corrupt compressed/tar stream raises
STREAM_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile, OSError)
