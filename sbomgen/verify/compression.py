"""Sniffing and opening possibly compressed files (gzip; zstd through the zstd tool).

Inputs are untrusted: a file is opened only when it is a regular file (never a FIFO, which
would block, nor a device), every decompressed byte can be counted against a
:class:`~sbomgen.limits.Budget`, and the zstd process is killed and reaped on every exit path.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import shutil
import stat
import struct
import subprocess
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from sbomgen.errors import ArchiveError
from sbomgen.limits import Budget

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_OS_NAMES = {0: "FAT", 3: "Unix", 7: "Macintosh", 11: "NTFS", 255: "unknown"}
# O_NONBLOCK: should a FIFO take a file's place, open() must not wait for a writer
_O_READ = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def open_regular(path: str, follow: bool = False) -> BinaryIO:
    """``path`` opened for reading, only if it is a regular file.

    ``follow=False`` (the default) refuses a symlink in the last component: inside a tree
    being compared a symlink is compared as a link, never followed.
    """
    flags = _O_READ | (0 if follow else getattr(os, "O_NOFOLLOW", 0))
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow:
            raise ArchiveError(f"{path}: became a symlink while it was compared") from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ArchiveError(f"{path}: not a regular file (it changed while it was compared, or is a device or FIFO)")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def sniff(path: str, follow: bool = True) -> str:
    """``gzip``, ``zstd``, ``tar`` (ustar/gnu magic) or ``other``."""
    with open_regular(path, follow) as handle:
        head = handle.read(512)
    return sniff_bytes(head)


def sniff_bytes(head: bytes) -> str:
    if head[:2] == GZIP_MAGIC:
        return "gzip"
    if head[:4] == ZSTD_MAGIC:
        return "zstd"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    return "other"


def gzip_header(path: str) -> dict[str, str]:
    """Every field of the first gzip member header (those that vary between otherwise equal
    files: mtime, OS byte, XFL, flags, name, comment, extra field)."""
    with open_regular(path, follow=True) as handle:
        head = handle.read(10)
        if len(head) < 10 or head[:2] != GZIP_MAGIC:
            raise ArchiveError(f"{path}: truncated gzip header")

        def take(n: int) -> bytes:
            data = handle.read(n)
            if len(data) < n:
                raise ArchiveError(f"{path}: truncated gzip header")
            return data

        def zero_terminated() -> str:
            raw = bytearray()
            while (byte := handle.read(1)) != b"\0":
                if not byte:
                    raise ArchiveError(f"{path}: truncated gzip header")
                if len(raw) < 4096:
                    raw += byte
            return raw.decode("latin-1")

        method, flags, mtime, xfl, os_byte = head[2], head[3], struct.unpack("<I", head[4:8])[0], head[8], head[9]
        extra = name = comment = ""
        if flags & 0x04:  # FEXTRA
            (length,) = struct.unpack("<H", take(2))
            extra = take(length)[:256].hex()
        if flags & 0x08:  # FNAME
            name = zero_terminated()
        if flags & 0x10:  # FCOMMENT
            comment = zero_terminated()
    return {
        "mtime": str(mtime), "os": f"{os_byte} ({_OS_NAMES.get(os_byte, '?')})", "xfl": str(xfl), "name": name,
        "method": str(method), "flags": f"0x{flags:02x}", "comment": comment, "extra": extra,
    }


class HashingReader:
    """A read-only stream that hashes (SHA-256) and counts what passes through it."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.hasher = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n if n is not None and n >= 0 else 1 << 20)
        self.hasher.update(data)
        self.size += len(data)
        return data

    def drain(self) -> str:
        while self.read(1 << 20):
            pass
        return self.hasher.hexdigest()


class BudgetReader:
    """A read-only stream that charges every byte read to a :class:`Budget` (decompression
    bombs and endless streams stop at ``--max-bytes``)."""

    def __init__(self, raw: BinaryIO, budget: Budget):
        self.raw = raw
        self.budget = budget

    def read(self, n: int = -1) -> bytes:
        # never "read everything": a bomb must be read (and charged) piece by piece
        data = self.raw.read(n if n is not None and 0 <= n <= 1 << 20 else 1 << 20)
        self.budget.add_bytes(len(data))
        return data

    def readinto(self, view) -> int:
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)


class GzipReader:
    """The decompressed bytes of a gzip stream (every member; zero padding after the last is
    allowed, anything else is corrupt), read in large pieces: gzip.GzipFile's 8 KiB steps
    cost more than the inflating itself.  zlib checks each member's CRC and length."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self._inflater: zlib._Decompress | None = None  # type: ignore[name-defined]
        self._input = b""

    def read(self, n: int = -1) -> bytes:
        n = n if n is not None and n > 0 else 1 << 20
        while True:
            if self._inflater is None and not self._start_member():
                return b""
            if not self._input:
                self._input = self.raw.read(1 << 16)
                if not self._input:
                    raise EOFError("Compressed file ended before the end-of-stream marker was reached")
            out = self._inflater.decompress(self._input, n)  # type: ignore[union-attr]
            self._input = self._inflater.unconsumed_tail  # type: ignore[union-attr]
            if self._inflater.eof:  # type: ignore[union-attr]
                self._input = self._inflater.unused_data + self._input  # type: ignore[union-attr]
                self._inflater = None
            if out:
                return out

    def _start_member(self) -> bool:
        data = self._input
        while True:
            data = data.lstrip(b"\0")
            if len(data) >= 2:
                break
            more = self.raw.read(1 << 16)
            if not more:
                if data:
                    raise gzip.BadGzipFile("Not a gzipped file (trailing bytes after the last member)")
                self._input = b""
                return False
            data += more
        if data[:2] != GZIP_MAGIC:
            raise gzip.BadGzipFile("Not a gzipped file (trailing bytes after the last member)")
        self._inflater = zlib.decompressobj(31)
        self._input = data
        return True

    def readinto(self, view) -> int:
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)


@contextmanager
def open_decompressed(path: str, budget: Budget | None = None) -> Iterator[BinaryIO]:
    """The decompressed bytes of ``path`` as a stream (plain files as they are), charged to
    ``budget`` when one is given."""
    with open_regular(path, follow=True) as raw:
        kind = sniff_bytes(raw.read(512))
        raw.seek(0)
        if kind == "gzip":
            stream = GzipReader(raw)
            yield BudgetReader(stream, budget) if budget else stream  # type: ignore[misc]
        elif kind == "zstd":
            with _zstd(path, raw) as stream:
                yield BudgetReader(stream, budget) if budget else stream
        else:
            yield BudgetReader(raw, budget) if budget else raw


@contextmanager
def _zstd(path: str, raw: BinaryIO) -> Iterator[BinaryIO]:
    tool = shutil.which("zstd")
    if tool is None:
        raise ArchiveError(f"{path} is zstd-compressed and the zstd tool is not installed")
    # the already opened (checked regular) file is zstd's stdin: no second lookup of the path;
    # zstd's own default memory limit (128 MiB windows) bounds its memory
    os.lseek(raw.fileno(), 0, os.SEEK_SET)  # the sniff moved the descriptor: zstd reads it from the start
    proc = subprocess.Popen([tool, "-dcq"], stdin=raw.fileno(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    failed = False
    try:
        yield proc.stdout  # type: ignore[misc]
    except BaseException:
        failed = True
        raise
    finally:
        # A reader that stops early (a 512-byte sniff, an error) must not turn zstd's broken
        # pipe into "corrupt input": if zstd is still running, it was us who stopped.
        stopped_early = failed or (proc.poll() is None and proc.stdout.read(1) != b"")  # type: ignore[union-attr]
        if stopped_early and proc.poll() is None:
            proc.kill()
        proc.stdout.close()  # type: ignore[union-attr]
        code = proc.wait()
        message = proc.stderr.read(4096).decode(errors="replace").strip()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
        if code != 0 and not stopped_early:
            raise ArchiveError(f"{path}: zstd: {message.splitlines()[-1] if message else 'corrupt input'}")


#: what a truncated or corrupt compressed/tar stream raises
STREAM_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile, OSError)
#: what parsing an untrusted tar stream may raise besides STREAM_ERRORS (tarfile reports a bad
#: header as ReadError, but a bad number, name encoding or sparse map as other errors)
TAR_ERRORS = (tarfile.TarError, ValueError, struct.error, OverflowError, *STREAM_ERRORS)
