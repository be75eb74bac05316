"""Files safely: outputs all or nothing, never half-written, never destroying; inputs from
elsewhere read bounded, and only when they are regular files."""

from __future__ import annotations

import json
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from sbomgen.errors import LimitExceededError, OutputWriteError, SbomgenError


def load_json(path: str, error: type[SbomgenError], what: str = ""):
    """Parse a JSON file; an unreadable file or bad JSON raises ``error`` with one clear line."""
    label = f"{what} {path}" if what else str(path)
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise error(f"cannot read {label}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{label} is not valid JSON: {exc}") from None


def read_bounded(path: str, limit: int, error: type[SbomgenError], label: str, *, allow_pipe: bool = False) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them: how every file that
    may come from elsewhere (a document, a statement, a key) is read.

    The file is opened without blocking (a FIFO would wait for a writer) and checked with
    ``fstat``: a directory, device or socket — and a FIFO unless ``allow_pipe`` (``/dev/stdin``
    given on purpose) — is refused rather than read forever. ``error`` says what cannot be read
    (``cannot read LABEL: …``); more than ``limit`` bytes, even a file that grows while it is
    read, is :class:`LimitExceededError`.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise error(f"cannot read {label}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        pipe = allow_pipe and stat.S_ISFIFO(info.st_mode)
        if not (stat.S_ISREG(info.st_mode) or pipe):
            raise error(f"cannot read {label}: {'it is a directory' if stat.S_ISDIR(info.st_mode) else 'not a regular file'}")
        if pipe:
            os.set_blocking(fd, True)
        if info.st_size > limit:
            raise LimitExceededError(f"{label}: more than {limit} bytes ({info.st_size})")
        chunks, total = [], 0
        while chunk := os.read(fd, 1 << 20):
            total += len(chunk)
            if total > limit:
                raise LimitExceededError(f"{label}: more than {limit} bytes")
            chunks.append(chunk)
    except OSError as exc:
        raise error(f"cannot read {label}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


# Outputs never destroy.
#
# * ``-`` is stdout.
# * A path that names this process's own stdout or stderr (``/dev/stdout``, ``/proc/self/fd/1``,
#   the file a shell redirected stdout to) is written through that stream.
# * A FIFO, a character or block device, a socket, anything under /dev or /proc — anything
#   that is not a regular file — is opened and written to, never replaced or truncated.
# * A regular file is replaced atomically: a temporary file in the same directory, then a
#   rename. The replaced file keeps its permission bits (unless the caller asks for a mode).
# * A symlink is written *through*: its target is replaced (or created) and the link is kept.
# * A directory is never an output file: that is an error, and nothing in it is touched.


@dataclass(frozen=True, slots=True)
class _Target:
    path: str  # what to open or replace (a symlink resolved)
    stream: int | None  # 1 or 2: write to our own stdout/stderr
    in_place: bool  # not a regular file: open and write, never replace
    mode: int | None  # permission bits of the regular file being replaced


def _same_file(info: os.stat_result, fd: int) -> bool:
    try:
        other = os.fstat(fd)
    except OSError:
        return False
    return (info.st_dev, info.st_ino) == (other.st_dev, other.st_ino) and not stat.S_ISDIR(info.st_mode)


def _target(path: str) -> _Target:
    if path == "-":
        return _Target(path, 1, True, None)
    try:
        info = os.stat(path)  # follows symlinks: what a write would reach
    except FileNotFoundError:
        # a new file, or a dangling symlink: create what the link names
        real = os.path.realpath(path) if os.path.islink(path) else os.path.abspath(path)
        return _Target(real, None, False, None)
    except OSError as exc:
        raise OutputWriteError(f"cannot write {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise OutputWriteError(f"cannot write {path}: it is a directory")
    for fd in (1, 2):
        if _same_file(info, fd):
            return _Target(path, fd, True, None)
    real = os.path.realpath(path)
    if not stat.S_ISREG(info.st_mode) or real.startswith(("/dev/", "/proc/", "/sys/")):
        return _Target(path, None, True, None)
    return _Target(real, None, False, stat.S_IMODE(info.st_mode))


def is_stdout(path: str) -> bool:
    """Whether writing ``path`` writes our stdout (``-``, ``/dev/stdout``, ``/dev/fd/1``...)."""
    if path == "-":
        return True
    try:
        return _target(path).stream == 1
    except OutputWriteError:
        return False


def check_writable(path: str) -> None:
    """Fail now, with :class:`OutputWriteError`, if ``path`` could not be written later:
    a 40,000-package SBOM should not be built only to find its directory missing."""
    target = _target(path)
    if target.stream is not None:
        return
    if target.in_place:
        if not os.access(target.path, os.W_OK):
            raise OutputWriteError(f"cannot write {path}: permission denied")
        return
    directory = os.path.dirname(target.path)
    if not os.path.isdir(directory):
        raise OutputWriteError(f"cannot write {path}: the directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputWriteError(f"cannot write {path}: permission denied on {directory}")


@contextmanager
def open_output(path: str, mode: int | None = None) -> Iterator[BinaryIO]:
    """A binary handle to write the output ``path`` through, following the rules above: the
    new content replaces a regular file only when the block ends without an exception (the
    temporary file is removed on every other way out, SIGTERM included)."""
    target = _target(path)
    if target.stream is not None:
        stream = sys.stdout if target.stream == 1 else sys.stderr
        stream.flush()
        yield stream.buffer
        stream.buffer.flush()
        return
    if target.in_place:
        try:
            fd = os.open(target.path, os.O_WRONLY | getattr(os, "O_NOCTTY", 0))
            handle = os.fdopen(fd, "wb")
        except OSError as exc:
            raise OutputWriteError(f"cannot write {path}: {exc.strerror or exc}") from None
        try:
            with handle:
                yield handle
        except OSError as exc:
            if isinstance(exc, BrokenPipeError):
                raise
            raise OutputWriteError(f"cannot write {path}: {exc.strerror or exc}") from None
        return
    bits = mode if mode is not None else target.mode if target.mode is not None else 0o666 & ~_umask()
    try:
        with replacing(target.path, bits) as handle:
            yield handle
    except OSError as exc:
        raise OutputWriteError(f"cannot write {path}: {exc.strerror or exc}") from None


@contextmanager
def replacing(path: str, mode: int) -> Iterator[BinaryIO]:
    """A handle on a temporary file beside ``path`` that is renamed over ``path`` (with
    permissions ``mode``) only when the block ends without an exception, and removed on every
    other way out: whatever was at ``path`` is replaced whole or not at all. Raises
    :class:`OSError`."""
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        tmp = None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def write_atomic_bytes(path: str, data: bytes, mode: int | None = None) -> None:
    """:func:`write_atomic` for bytes (``-`` writes them to stdout)."""
    with open_output(path, mode) as handle:
        handle.write(data)


def write_atomic(path: str, text: str, mode: int | None = None) -> None:
    """Write ``text`` to ``path`` (see :func:`open_output`): a regular file through a temporary
    file in the same directory and a rename, so that any failure leaves ``path`` as it was and
    raises :class:`OutputWriteError`; ``-``, FIFOs and devices are written to.  ``mode`` sets a
    new file's permissions (default: an existing file's, or 0666 less the umask)."""
    write_atomic_bytes(path, text.encode("utf-8"), mode)
