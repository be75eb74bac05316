"""Rebuilding derivations with Nix (``--check``) and saying, per derivation, what differs and why.

Nix rebuilds a derivation whose outputs are in the store and, when the new outputs differ,
keeps them beside the old as ``<out>.check``; those pairs go through the comparators.
Fixed-output derivations are skipped (Nix checks them by their declared hash on every
build), and so are derivations for another platform.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field

from sbomgen.nix import cli as nix_cli
from sbomgen.nix.store import NixStore
from sbomgen.nix.storepath import path_name, resolve_input
from sbomgen.verify.dispatch import compare
from sbomgen.verify.model import Comparison

STATUSES = ("reproducible", "differs", "failed", "not-built", "skipped")


@dataclass(slots=True)
class RebuildResult:
    drv_path: str
    name: str
    status: str
    message: str = ""
    comparisons: list[Comparison] = field(default_factory=list)

    def as_json(self, max_differences: int | None = None) -> dict:
        return {
            "derivation": self.drv_path,
            "name": self.name,
            "status": self.status,
            "message": self.message,
            "outputs": [c.as_json(max_differences) for c in self.comparisons],
        }


def _remove_tree(path: str) -> None:
    """Delete a path Nix left behind (read-only store copies included), following no link:
    a symlink is removed itself, a directory's own permissions are opened (through its file
    descriptor, never a path that could be swapped) and it is removed with rmtree's
    symlink-attack-safe walk."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(info.st_mode):
        os.unlink(path)
        return
    for _dirpath, _dirs, _files, dirfd in os.fwalk(path, follow_symlinks=False):
        os.fchmod(dirfd, stat.S_IRWXU)
    shutil.rmtree(path)


def _check_paths(store: NixStore, drv, check_paths: dict[str, str]) -> dict[str, str]:
    """The ``<out>.check`` pairs that Nix can have made for this derivation: Nix's messages
    are parsed from its stderr, which the build log shares, so a build could print a
    "differs from" line naming any path.  Only an output of this derivation and that output
    plus ``.check``, directly inside the store directory, are compared and later deleted."""
    outputs = {o.path for o in drv.outputs.values() if o.path}
    return {
        original: check for original, check in check_paths.items()
        if original in outputs and check == original + ".check" and os.path.dirname(check) == store.store_dir
    }


def _kept_build_dirs(drv_name: str, kept: tuple[str, ...]) -> list[str]:
    """Build directories Nix says it kept for this derivation, as Nix names them
    (``<tmp>/nix-build-<name>.drv-<n>``, a real directory); anything else the log names is left alone."""
    pattern = re.compile(rf"nix-build-{re.escape(drv_name)}\.drv-\d+")
    roots = {os.path.realpath(d) for d in (tempfile.gettempdir(), os.environ.get("TMPDIR") or "/tmp", "/tmp")}
    found = []
    for path in kept:
        parent, base = os.path.split(path)
        if pattern.fullmatch(base) and os.path.realpath(parent) in roots:
            try:
                if stat.S_ISDIR(os.lstat(path).st_mode):
                    found.append(path)
            except OSError:
                continue
    return found


def rebuild_one(store: NixStore, drv_path: str, keep_check: bool = False) -> RebuildResult:
    drv = store.derivation(drv_path)
    name = path_name(drv_path).removesuffix(".drv")
    if drv.is_fixed_output:
        return RebuildResult(drv_path, name, "skipped", "fixed-output derivation: Nix checks it by its declared hash")
    if drv.system not in (nix_cli.local_system(), "builtin"):
        return RebuildResult(drv_path, name, "skipped", f"built for {drv.system}, this machine is {nix_cli.local_system()}")
    outcome = nix_cli.check(drv_path)
    result = RebuildResult(drv_path, name, outcome.status, outcome.message)
    check_paths = _check_paths(store, drv, outcome.check_paths)
    try:
        for original, check_path in sorted(check_paths.items()):
            result.comparisons.append(compare(original, check_path))
    finally:
        for kept in _kept_build_dirs(name, outcome.kept_build_dirs):
            shutil.rmtree(kept, ignore_errors=True)
        if not keep_check:
            for check_path in check_paths.values():
                _remove_tree(check_path)
    return result


def rebuild(
    target: str,
    *,
    recursive: bool = False,
    keep_check: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[RebuildResult]:
    """Rebuild the deriver of ``target`` (a ``./result``, output or ``.drv``), or its whole build closure."""
    resolved = resolve_input(target)
    store = NixStore(resolved.store_dir)
    store.require_valid(resolved.store_path)
    if resolved.is_derivation:
        root_drv = resolved.store_path
    else:
        info = store.path_infos([resolved.store_path])[resolved.store_path]
        if not info.deriver:
            from sbomgen.errors import InvalidStorePathError

            raise InvalidStorePathError(f"{resolved.store_path} has no deriver: it is a source, there is nothing to rebuild")
        root_drv = info.deriver
    if recursive:
        drvs = sorted({d.path for d in store.derivation_closure(root_drv)}, key=lambda p: (p != root_drv, path_name(p)))
    else:
        drvs = [root_drv]
    results = []
    for index, drv_path in enumerate(drvs):
        if progress:
            progress(index, len(drvs), path_name(drv_path))
        results.append(rebuild_one(store, drv_path, keep_check))
    if progress:
        progress(len(drvs), len(drvs), "")
    return results


def summary(results: list[RebuildResult]) -> dict:
    counts = {status: sum(1 for r in results if r.status == status) for status in STATUSES}
    checked = counts["reproducible"] + counts["differs"]
    return {
        "derivations": len(results),
        **counts,
        "reproducible_percent": round(100.0 * counts["reproducible"] / checked, 1) if checked else None,
    }

