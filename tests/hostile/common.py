"""What every hostile-input test asserts: one clear error line, the documented exit code, no
traceback, and a canary directory beside the input that is byte-for-byte unchanged."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from tests.helpers import Run


def make_canary(parent: Path, name: str = "canary") -> Path:
    """A directory of files, a subdirectory and a symlink that hostile inputs aim at."""
    root = parent / name
    (root / "sub").mkdir(parents=True)
    (root / "secret.txt").write_text("canary secret\n")
    (root / "sub" / "data.bin").write_bytes(bytes(range(256)) * 4)
    (root / "link").symlink_to("secret.txt")
    os.chmod(root / "sub", 0o750)
    return root


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry below ``root`` (and ``root`` itself): type, mode, size, content hash, link target."""
    entries: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in ["", *dirnames, *filenames]:
            full = os.path.join(dirpath, name) if name else dirpath
            if name == "" and dirpath != str(root):
                continue
            info = os.lstat(full)
            rel = os.path.relpath(full, root)
            if stat.S_ISLNK(info.st_mode):
                entries[rel] = ("link", os.readlink(full))
            elif stat.S_ISREG(info.st_mode):
                entries[rel] = ("file", stat.S_IMODE(info.st_mode), hashlib.sha256(Path(full).read_bytes()).hexdigest())
            else:
                entries[rel] = ("dir" if stat.S_ISDIR(info.st_mode) else "other", stat.S_IMODE(info.st_mode))
    return entries


def assert_one_line_error(run: Run, code: int, *fragments: str, prog: str = "sbomgen") -> str:
    """Exit ``code``, exactly one line on stderr that starts ``PROG: error:`` and contains each
    fragment, and no traceback. Returns the line."""
    assert run.code == code, (run.code, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr, run.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]
