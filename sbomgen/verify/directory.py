"""Comparing two directory trees (store paths): entries, types, modes, symlink targets, content.

The NAR hash of both sides is computed first: equal NAR hashes mean identical trees (that is
what "identical" means for a store path), and the walk only runs when they differ.
"""

from __future__ import annotations

import os
import stat

from sbomgen.nix.nar import nar_sha256_hex
from sbomgen.verify.files import compare_file_contents
from sbomgen.verify.hints import text_cause
from sbomgen.verify.model import Cause, Comparison, Difference, Kind


def _type(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISREG(mode):
        return "file"
    return "special"


def _entries(root: str) -> dict[str, os.stat_result]:
    found: dict[str, os.stat_result] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            found[os.path.relpath(full, root)] = os.lstat(full)
    return found


def compare_directories(left: str, right: str, comparison: Comparison, prefix: str = "") -> None:
    """Append the differences between trees ``left`` and ``right`` to ``comparison``."""
    from sbomgen.verify.dispatch import compare_nested

    lnar, rnar = nar_sha256_hex(left), nar_sha256_hex(right)
    comparison.facts[f"{prefix}left_nar_sha256"] = lnar
    comparison.facts[f"{prefix}right_nar_sha256"] = rnar
    if lnar == rnar:
        return
    before = len(comparison.differences)
    lents, rents = _entries(left), _entries(right)
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
            ltarget, rtarget = os.readlink(lpath), os.readlink(rpath)
            if ltarget != rtarget:
                comparison.add(Difference(label, Kind.SYMLINK, ltarget, rtarget, cause=text_cause(ltarget, rtarget)))
        elif ltype == "file":
            if not compare_nested(lpath, rpath, label, comparison):
                diff = compare_file_contents(label, lpath, rpath)
                if diff:
                    comparison.add(diff)
    if len(comparison.differences) == before:
        # Same entries, modes and bytes, yet other NARs: only the owner-execute bit or the
        # order can do that, and both are covered above; say so rather than claim identity.
        comparison.add(Difference(prefix or ".", Kind.NAR_HASH, lnar, rnar))
