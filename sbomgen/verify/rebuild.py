"""Rebuilding derivations with Nix (``--check``) and saying, per derivation, what differs and why.

Nix rebuilds a derivation whose outputs are in the store and, when the new outputs differ,
keeps them beside the old as ``<out>.check``; those pairs go through the comparators.
Fixed-output derivations are skipped (Nix checks them by their declared hash on every
build), and so are derivations for another platform.
"""

from __future__ import annotations

import os
import shutil
import stat
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
    """Delete a path Nix left behind (read-only store copies included)."""
    if not os.path.lexists(path):
        return
    for dirpath, _dirs, _files in os.walk(path):
        os.chmod(dirpath, stat.S_IRWXU)
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def rebuild_one(store: NixStore, drv_path: str, keep_check: bool = False) -> RebuildResult:
    drv = store.derivation(drv_path)
    name = path_name(drv_path).removesuffix(".drv")
    if drv.is_fixed_output:
        return RebuildResult(drv_path, name, "skipped", "fixed-output derivation: Nix checks it by its declared hash")
    if drv.system not in (nix_cli.local_system(), "builtin"):
        return RebuildResult(drv_path, name, "skipped", f"built for {drv.system}, this machine is {nix_cli.local_system()}")
    outcome = nix_cli.check(drv_path)
    result = RebuildResult(drv_path, name, outcome.status, outcome.message)
    try:
        for original, check_path in sorted(outcome.check_paths.items()):
            result.comparisons.append(compare(original, check_path))
    finally:
        for kept in outcome.kept_build_dirs:
            shutil.rmtree(kept, ignore_errors=True)
        if not keep_check:
            for check_path in outcome.check_paths.values():
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

