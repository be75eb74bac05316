"""Comparing images: index -> manifest -> config (a JSON diff) -> layers by digest, each as a tar.

Works across OCI layouts, oci-archives and docker-archives alike (a docker-archive has no
manifest blob: its manifest.json entry is compared instead).
"""

from __future__ import annotations

import hashlib
import json

from sbomgen.errors import ImageError
from sbomgen.limits import Budget
from sbomgen.oci.reader import Image, ImageManifest, Layer
from sbomgen.verify.files import clip, streams_equal
from sbomgen.verify.hints import value_cause
from sbomgen.verify.model import Comparison, Difference, Kind
from sbomgen.verify.tarball import compare_members, read_members


def _short(digest: str | None) -> str:
    return (digest or "")[:19]


#: JSON nesting followed by json_diff; deeper values are compared whole
_JSON_DEPTH = 64


def _dump(value: object) -> str:
    try:
        return clip(json.dumps(value, sort_keys=True)) or ""
    except (TypeError, ValueError, RecursionError):
        return clip(repr(value)) or ""


def json_diff(doc: str, left: object, right: object, comparison: Comparison, pointer: str = "", depth: int = 0) -> None:
    """Every leaf that differs between two JSON values, as ``doc:/json/pointer``."""
    if depth < _JSON_DEPTH and isinstance(left, dict) and isinstance(right, dict):
        for key in sorted(left.keys() | right.keys(), key=str):
            child = f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}"
            if key not in right:
                comparison.add(Difference(f"{doc}:{clip(child)}", Kind.JSON, _dump(left[key]), None))
            elif key not in left:
                comparison.add(Difference(f"{doc}:{clip(child)}", Kind.JSON, None, _dump(right[key])))
            else:
                json_diff(doc, left[key], right[key], comparison, child, depth + 1)
    elif depth < _JSON_DEPTH and isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        for index, (a, b) in enumerate(zip(left, right, strict=False)):
            json_diff(doc, a, b, comparison, f"{pointer}/{index}", depth + 1)
    else:
        try:
            differ = type(left) is not type(right) or left != right
        except RecursionError:
            raise ImageError(f"{doc}: JSON nested too deeply to compare") from None
        if differ:
            comparison.add(
                Difference(f"{doc}:{clip(pointer) or '/'}", Kind.JSON, _dump(left), _dump(right), cause=value_cause(left, right))
            )


def _without_digests(manifest: dict) -> dict:
    """The manifest with config/layer digests and sizes taken out: those are compared by content."""
    if not isinstance(manifest, dict):
        return {"": manifest}
    clean = {k: v for k, v in manifest.items() if k not in ("config", "layers", "Config", "Layers")}
    return clean


def _descriptors(index: dict) -> object:
    """index.json's manifest list without digests and sizes (compared manifest by manifest):
    platforms, annotations (tags), media types."""
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list):
        return manifests
    return [{k: v for k, v in d.items() if k not in ("digest", "size")} if isinstance(d, dict) else d for d in manifests]


def covered_names(image: Image) -> set[str]:
    """The files of an image's container that the image comparison reads: index.json,
    manifest.json, and every manifest, config and layer blob."""
    from sbomgen.oci.reader import blob_name

    names = {"index.json", "manifest.json"}
    for manifest in image.manifests:
        for digest in (manifest.digest, manifest.config_digest if image.kind != "docker-archive" else None):
            if digest:
                try:
                    names.add(blob_name(digest))
                except ImageError:
                    pass
        if image.kind == "docker-archive" and isinstance(manifest.manifest, dict) and isinstance(manifest.manifest.get("Config"), str):
            names.add(manifest.manifest["Config"].removeprefix("./"))
        names.update(layer.name.removeprefix("./") for layer in manifest.layers)
    return names


def _same_verified_blob(left: Image, la: Layer, right: Image, lb: Layer) -> bool:
    """Whether two blobs that claim one digest hold the same bytes, and those bytes have it.

    Equal bytes have equal hashes, so hashing one side verifies both. Bytes that differ
    are left to the full comparison, which verifies each side on its own. A docker-archive
    layer known only by its diff id (the digest of its uncompressed tar) is verified by
    reading it through ``open_layer``.
    """
    hasher = hashlib.sha256()
    with left.store.open_file(la.name) as lf, right.store.open_file(lb.name) as rf:
        if not streams_equal(lf, rf, hasher):
            return False
    if getattr(la, "verify_uncompressed", False):
        with left.open_layer(la) as stream:
            while stream.read(1 << 20):
                pass
    elif la.digest.startswith("sha256:") and hasher.hexdigest() != la.digest[7:]:
        raise ImageError(f"{left.source} and {right.source}: layer {la.digest}: digest mismatch: content is sha256:{hasher.hexdigest()}")
    elif not la.digest.startswith("sha256:"):
        with left.open_layer(la) as stream:  # another algorithm: the reader verifies it
            while stream.read(1 << 20):
                pass
    return True


def _compare_manifest(left: Image, right: Image, a: ImageManifest, b: ImageManifest, label: str, comparison: Comparison,
                      budgets: tuple[Budget, Budget]) -> None:
    """Equal digests are not trusted: every layer is still read, which verifies its digest."""
    json_diff(f"{label}manifest", _without_digests(a.manifest), _without_digests(b.manifest), comparison)
    if a.config_digest != b.config_digest:
        comparison.add(Difference(f"{label}config", Kind.DIGEST, a.config_digest, b.config_digest))
        json_diff(f"{label}config", a.config, b.config, comparison)
    for position in range(max(len(a.layers), len(b.layers))):
        if position >= len(b.layers):
            comparison.add(Difference(f"{label}layer {position}", Kind.MISSING, a.layers[position].digest, None))
            continue
        if position >= len(a.layers):
            comparison.add(Difference(f"{label}layer {position}", Kind.EXTRA, None, b.layers[position].digest))
            continue
        la, lb = a.layers[position], b.layers[position]
        where = f"{label}layer {position} ({_short(la.digest)})/"
        if la.digest == lb.digest and _same_verified_blob(left, la, right, lb):
            continue
        with left.open_layer(la) as stream:
            amembers, apayload = read_members(stream, f"{left.source} {where}", budgets[0])
        with right.open_layer(lb) as stream:
            bmembers, bpayload = read_members(stream, f"{right.source} {where}", budgets[1])
        comparison.add(Difference(f"{label}layer {position}", Kind.DIGEST, la.digest, lb.digest))
        if apayload == bpayload:
            comparison.add(Difference(f"{label}layer {position}", Kind.COMPRESSION, la.digest, lb.digest,
                                      "compressed blobs differ, the tar inside is identical"))
            continue
        compare_members(amembers, bmembers, where, comparison,
                        lambda la=la: left.open_layer(la), lambda lb=lb: right.open_layer(lb))


def compare_images(left: Image, right: Image, comparison: Comparison) -> None:
    comparison.kind = left.kind if left.kind == right.kind else f"{left.kind} vs {right.kind}"
    budgets = Budget(left.source), Budget(right.source)
    if isinstance(left.index, dict) and isinstance(right.index, dict):
        digests_a = [m.get("digest") if isinstance(m, dict) else m for m in left.index.get("manifests") or []]
        digests_b = [m.get("digest") if isinstance(m, dict) else m for m in right.index.get("manifests") or []]
        if len(digests_a) != len(digests_b):  # same count: each manifest pair says what differs
            comparison.add(Difference("index.json:/manifests", Kind.DIGEST, clip(", ".join(map(str, digests_a))),
                                      clip(", ".join(map(str, digests_b)))))
        else:
            json_diff("index.json", _descriptors(left.index), _descriptors(right.index), comparison, "/manifests")
        json_diff("index.json", {k: v for k, v in left.index.items() if k != "manifests"},
                  {k: v for k, v in right.index.items() if k != "manifests"}, comparison)
    for position in range(max(len(left.manifests), len(right.manifests))):
        label = f"image {position}: " if max(len(left.manifests), len(right.manifests)) > 1 else ""
        if position >= len(right.manifests):
            comparison.add(Difference(f"{label}manifest", Kind.MISSING, left.manifests[position].digest, None))
        elif position >= len(left.manifests):
            comparison.add(Difference(f"{label}manifest", Kind.EXTRA, None, right.manifests[position].digest))
        else:
            a, b = left.manifests[position], right.manifests[position]
            if a.digest != b.digest and a.digest and b.digest:
                comparison.add(Difference(f"{label}manifest", Kind.DIGEST, a.digest, b.digest))
            _compare_manifest(left, right, a, b, label, comparison, budgets)
    _attribute_digest_causes(comparison)


def _attribute_digest_causes(comparison: Comparison) -> None:
    """A digest differs because what it covers does: when that has one cause, so has the digest."""
    inner = {d.cause for d in comparison.differences if d.kind is not Kind.DIGEST}
    if len(inner) == 1 and None not in inner:
        cause = inner.pop()
        for diff in comparison.differences:
            if diff.kind is Kind.DIGEST and diff.cause is None:
                diff.cause = cause
