"""Comparing two directory trees (store paths): entries, types, modes, symlink targets, content.

The NAR hash of both sides is computed first: equal NAR hashes and equal permission bits
mean identical trees (that is what "identical" means for a store path), and the content walk
only runs when they differ.  Nothing is followed: a symlink is compared by its target, a
FIFO, socket or device by its type (and device numbers), never opened; every entry counts
against ``--max-members``.
"""

from __future__ import annotations

import os
import stat

from sbomgen.errors import ArchiveError, NarError
from sbomgen.limits import Budget
from sbomgen.nix.nar import nar_sha256_hex
from sbomgen.verify.files import clip, compare_file_contents
from sbomgen.verify.hints import text_cause
from sbomgen.verify.model import Cause, Comparison, Difference, Kind


def _type(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        return "char-device"
    if stat.S_ISBLK(mode):
        return "block-device"
    return "special"


def _entries(root: str, budget: Budget) -> dict[str, os.stat_result]:
    """Every entry below ``root`` by relative path, from lstat (no link is followed)."""
    found: dict[str, os.stat_result] = {}
    pending = [""]
    while pending:
        rel = pending.pop()
        try:
            with os.scandir(os.path.join(root, rel) if rel else root) as listing:
                for entry in listing:
                    budget.add_member()
                    child = os.path.join(rel, entry.name) if rel else entry.name
                    info = entry.stat(follow_symlinks=False)
                    found[child] = info
                    if stat.S_ISDIR(info.st_mode):
                        pending.append(child)
        except OSError as exc:
            raise ArchiveError(f"cannot read directory {os.path.join(root, rel)}: {exc.strerror or exc}") from None
    return dict(sorted(found.items()))


def _modes_differ(left: dict[str, os.stat_result], right: dict[str, os.stat_result], label: str, comparison: Comparison) -> None:
    for rel in sorted(left.keys() & right.keys()):
        lst, rst = left[rel], right[rel]
        if _type(lst.st_mode) == _type(rst.st_mode) != "symlink" and stat.S_IMODE(lst.st_mode) != stat.S_IMODE(rst.st_mode):
            comparison.add(Difference(label + rel, Kind.MODE, oct(stat.S_IMODE(lst.st_mode)), oct(stat.S_IMODE(rst.st_mode)),
                                      cause=Cause.PERMISSIONS))


def compare_directories(left: str, right: str, comparison: Comparison, prefix: str = "", depth: int = 0) -> None:
    """Append the differences between trees ``left`` and ``right`` to ``comparison``."""
    from sbomgen.verify.dispatch import compare_nested

    lbudget, rbudget = Budget(left), Budget(right)
    try:
        lnar, rnar = nar_sha256_hex(left), nar_sha256_hex(right)
    except NarError:
        lnar = rnar = None  # a FIFO, socket or device: no NAR, compared entry by entry below
    else:
        comparison.facts[f"{prefix}left_nar_sha256"] = lnar
        comparison.facts[f"{prefix}right_nar_sha256"] = rnar
    lents, rents = _entries(left, lbudget), _entries(right, rbudget)
    before = len(comparison.differences)
    if lnar is not None and lnar == rnar:
        # the NAR holds only the execute bit: the other permission bits are compared here
        _modes_differ(lents, rents, prefix, comparison)
        return
    for rel in sorted(lents.keys() | rents.keys()):
        label = prefix + rel
        if rel not in rents:
            comparison.add(Difference(label, Kind.MISSING, _type(lents[rel].st_mode), None))
            continue
        if rel not in lents:
            comparison.add(Difference(label, Kind.EXTRA, None, _type(rents[rel].st_mode)))
            continue
        lst, rst = lents[rel], rents[rel]
        ltype, rtype = _type(lst.st_mode), _type(rst.st_mode)
        if ltype != rtype:
            comparison.add(Difference(label, Kind.TYPE, ltype, rtype))
            continue
        if ltype != "symlink" and stat.S_IMODE(lst.st_mode) != stat.S_IMODE(rst.st_mode):
            comparison.add(
                Difference(label, Kind.MODE, oct(stat.S_IMODE(lst.st_mode)), oct(stat.S_IMODE(rst.st_mode)), cause=Cause.PERMISSIONS)
            )
        lpath, rpath = os.path.join(left, rel), os.path.join(right, rel)
        if ltype == "symlink":
            try:
                ltarget, rtarget = os.readlink(lpath), os.readlink(rpath)
            except OSError as exc:
                raise ArchiveError(f"cannot read symlink {exc.filename}: {exc.strerror or exc}") from None
            if ltarget != rtarget:
                comparison.add(Difference(label, Kind.SYMLINK, clip(ltarget), clip(rtarget), cause=text_cause(ltarget, rtarget)))
        elif ltype == "file":
            if not compare_nested(lpath, rpath, label, comparison, depth + 1):
                diff = compare_file_contents(label, lpath, rpath, follow=False)
                if diff:
                    comparison.add(diff)
        elif ltype in ("char-device", "block-device") and lst.st_rdev != rst.st_rdev:
            comparison.add(Difference(label, Kind.TYPE, f"{ltype} {os.major(lst.st_rdev)},{os.minor(lst.st_rdev)}",
                                      f"{rtype} {os.major(rst.st_rdev)},{os.minor(rst.st_rdev)}", "device numbers"))
    if len(comparison.differences) == before and lnar != rnar:
        # Same entries, modes and bytes, yet other NARs: only a change during the walk can do
        # that; say so rather than claim identity.
        comparison.add(Difference(prefix or ".", Kind.NAR_HASH, lnar, rnar))
