"""Writing outputs safely: all or nothing, never a half-written file."""

from __future__ import annotations

import json
import os
import sys
import tempfile

from sbomgen.errors import OutputWriteError, SbomgenError


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


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def check_writable(path: str) -> None:
    """Fail now, with :class:`OutputWriteError`, if ``path`` could not be written later:
    a 40,000-package SBOM should not be built only to find its directory missing."""
    if path == "-":
        return
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise OutputWriteError(f"cannot write {path}: the directory {directory} does not exist")
    if os.path.isdir(path):
        raise OutputWriteError(f"cannot write {path}: it is a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputWriteError(f"cannot write {path}: permission denied on {directory}")


def write_atomic_bytes(path: str, data: bytes, mode: int | None = None) -> None:
    """:func:`write_atomic` for bytes (``-`` writes them to stdout)."""
    if path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    _write(path, data, mode)


def write_atomic(path: str, text: str, mode: int | None = None) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory and a rename.

    ``-`` writes to stdout.  ``mode`` sets the file's permissions (default: 0666 less the
    umask).  Any failure leaves ``path`` as it was and raises
    :class:`OutputWriteError`.
    """
    if path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    _write(path, text.encode("utf-8"), mode)


def _write(path: str, data: bytes, mode: int | None) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise OutputWriteError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
