"""Comparing images: index -> manifest -> config (a JSON diff) -> layers by digest, each as a tar.

Works across OCI layouts, oci-archives and docker-archives alike (a docker-archive has no
manifest blob: its manifest.json entry is compared instead).
"""

from __future__ import annotations

import hashlib
import json

from sbomgen.errors import ImageError
from sbomgen.oci.reader import Image, ImageManifest, Layer
from sbomgen.verify.files import streams_equal
from sbomgen.verify.hints import value_cause
from sbomgen.verify.model import Comparison, Difference, Kind
from sbomgen.verify.tarball import compare_members, read_members


def _short(digest: str | None) -> str:
    return (digest or "")[:19]


def json_diff(doc: str, left: object, right: object, comparison: Comparison, pointer: str = "") -> None:
    """Every leaf that differs between two JSON values, as ``doc:/json/pointer``."""
    if isinstance(left, dict) and isinstance(right, dict):
        for key in sorted(left.keys() | right.keys()):
            child = f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}"
            if key not in right:
                comparison.add(Difference(f"{doc}:{child}", Kind.JSON, json.dumps(left[key], sort_keys=True), None))
            elif key not in left:
                comparison.add(Difference(f"{doc}:{child}", Kind.JSON, None, json.dumps(right[key], sort_keys=True)))
            else:
                json_diff(doc, left[key], right[key], comparison, child)
    elif isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        for index, (a, b) in enumerate(zip(left, right)):
            json_diff(doc, a, b, comparison, f"{pointer}/{index}")
    elif left != right:
        comparison.add(
            Difference(f"{doc}:{pointer or '/'}", Kind.JSON, json.dumps(left, sort_keys=True), json.dumps(right, sort_keys=True),
                       cause=value_cause(left, right))
        )


def _without_digests(manifest: dict) -> dict:
    """The manifest with config/layer digests and sizes taken out: those are compared by content."""
    clean = {k: v for k, v in manifest.items() if k not in ("config", "layers", "Config", "Layers")}
    return clean


def _same_verified_blob(left: Image, la: Layer, right: Image, lb: Layer) -> bool:
    """Whether two blobs that claim one digest hold the same bytes, and those bytes have it.

    Equal bytes have equal hashes, so hashing one side verifies both. Bytes that differ
    are left to the full comparison, which verifies each side on its own.
    """
    hasher = hashlib.sha256()
    with left.store.open_file(la.name) as lf, right.store.open_file(lb.name) as rf:
        if not streams_equal(lf, rf, hasher):
            return False
    if la.digest.startswith("sha256:") and hasher.hexdigest() != la.digest[7:]:
        raise ImageError(f"{left.source} and {right.source}: layer {la.digest}: digest mismatch: content is sha256:{hasher.hexdigest()}")
    return True


def _compare_manifest(left: Image, right: Image, a: ImageManifest, b: ImageManifest, label: str, comparison: Comparison) -> None:
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
            amembers, apayload = read_members(stream, f"{left.source} {where}")
        with right.open_layer(lb) as stream:
            bmembers, bpayload = read_members(stream, f"{right.source} {where}")
        comparison.add(Difference(f"{label}layer {position}", Kind.DIGEST, la.digest, lb.digest))
        if apayload == bpayload:
            comparison.add(Difference(f"{label}layer {position}", Kind.COMPRESSION, la.digest, lb.digest,
                                      "compressed blobs differ, the tar inside is identical"))
            continue
        compare_members(amembers, bmembers, where, comparison,
                        lambda la=la: left.open_layer(la), lambda lb=lb: right.open_layer(lb))


def compare_images(left: Image, right: Image, comparison: Comparison) -> None:
    comparison.kind = left.kind if left.kind == right.kind else f"{left.kind} vs {right.kind}"
    if left.index is not None and right.index is not None:
        digests_a = [m.get("digest") for m in left.index.get("manifests", [])]
        digests_b = [m.get("digest") for m in right.index.get("manifests", [])]
        if len(digests_a) != len(digests_b):  # same count: each manifest pair says what differs
            comparison.add(Difference("index.json:/manifests", Kind.DIGEST, ", ".join(map(str, digests_a)), ", ".join(map(str, digests_b))))
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
            _compare_manifest(left, right, a, b, label, comparison)
    _attribute_digest_causes(comparison)


def _attribute_digest_causes(comparison: Comparison) -> None:
    """A digest differs because what it covers does: when that has one cause, so has the digest."""
    inner = {d.cause for d in comparison.differences if d.kind is not Kind.DIGEST}
    if len(inner) == 1 and None not in inner:
        cause = inner.pop()
        for diff in comparison.differences:
            if diff.kind is Kind.DIGEST and diff.cause is None:
                diff.cause = cause
