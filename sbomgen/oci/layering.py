"""Which store paths go into which layer, the way nixpkgs' buildLayeredImage decides it.

Each store path of the closure gets a layer of its own, most popular first, so that paths
many images share (glibc, CA certificates) sit in the same blobs everywhere.  When the closure
has more paths than ``max_layers`` allows, the least popular ones share the last layer.

Popularity (nixpkgs' ``referencesByPopularity``, "popularity contest"): how many paths of the
closure depend on a path, directly or not, plus one; ties are broken by store path name, then
hash, so the order never depends on dict or set iteration.
"""

from __future__ import annotations

from collections.abc import Mapping


def popularity(references: Mapping[str, tuple[str, ...]]) -> dict[str, int]:
    """For each path: 1 + the number of other paths whose closure contains it."""
    ancestors: dict[str, set[str]] = {path: set() for path in references}
    # reverse edges, then a walk per node: closures here are thousands of paths, not millions
    referrers: dict[str, list[str]] = {path: [] for path in references}
    for path, refs in references.items():
        for ref in refs:
            if ref != path and ref in referrers:
                referrers[ref].append(path)
    for path in references:
        seen: set[str] = set()
        stack = list(referrers[path])
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(referrers[node])
        ancestors[path] = seen
    return {path: 1 + len(found) for path, found in ancestors.items()}


def plan_layers(references: Mapping[str, tuple[str, ...]], max_layers: int) -> list[list[str]]:
    """Store paths grouped into at most ``max_layers`` layers, bottom (most shared) first."""
    if max_layers < 1:
        raise ValueError("max_layers must be at least 1")
    scores = popularity(references)

    def key(path: str) -> tuple:
        base = path.rsplit("/", 1)[-1]
        return (-scores[path], base[33:], base[:32])

    ranked = sorted(references, key=key)
    if len(ranked) <= max_layers:
        return [[path] for path in ranked]
    own = ranked[: max_layers - 1]
    return [[path] for path in own] + [sorted(ranked[max_layers - 1 :])]
