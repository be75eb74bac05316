"""SLSA provenance v1 as an in-toto Statement v1, built with in-toto-attestation.

* ``subject``: each requested output: name (store path name), uri (the store path's ``file:``
  URI, RFC 3986/8089, see :func:`store_uri`), the store path itself as annotation
  ``nixStorePath``, digest ``sha256``: for a subject that is a regular file (an image tarball),
  the SHA-256 of the file's bytes, which is what slsa-verifier, cosign and in-toto subject
  matching compute, with the NAR hash under ``nixNarSha256``; for a directory or symlink, the
  SHA-256 of its NAR (Nix's narHash), the only digest of a tree.
* ``buildDefinition.buildType``: :data:`BUILD_TYPE` (documented in docs/provenance.md).
  ``externalParameters``: the derivation and its requested outputs, and the Nix expression
  file and attribute when sbomgen ran the build.  ``internalParameters``: system, builder,
  args, Nix version (when known), and where the times come from.
* ``resolvedDependencies``: a ResourceDescriptor per dependency (the build-time graph: direct
  inputs, or the whole closure with ``recursive``): name, uri (``file:`` URI of the store
  path), digest, the
  download location, mirrors and declared hash of fixed-output fetches, and Nix facts as
  annotations (``nixStorePath`` keeps the plain path).
* ``runDetails``: builder id :data:`BUILDER_ID`, metadata (invocation id, start and finish),
  and the ``.drv`` itself as a byproduct.

No store I/O here: digests and times come in with the graph and :class:`RunInfo`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote, unquote, urlsplit

import google.protobuf.json_format as pb_json
from google.protobuf.timestamp_pb2 import Timestamp
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.v1.statement import Statement

from sbomgen import __version__
from sbomgen.formats.jsontext import dumps
from sbomgen.graph.model import Component, DependencyGraph, DigestOf
from sbomgen.nix.storepath import path_name

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://sbomgen.dev/buildtypes/nix-derivation/v1"
BUILDER_ID = "https://sbomgen.dev/builders/nix-local/v1"
MEDIA_TYPE = "application/vnd.in-toto+json"

#: digest keys (see docs/provenance.md)
NAR_SHA256 = "sha256"
FILE_SHA256 = "fileSha256"
DRV_SHA256 = "nixDrvSha256"
#: the NAR hash of a subject whose ``sha256`` is of the file's bytes
NIX_NAR_SHA256 = "nixNarSha256"


#: characters of a store path (and of most paths in one) written as they are in a ``file:`` URI:
#: RFC 3986 unreserved characters, and the sub-delims store names use; ``?``, ``#``, ``%``,
#: spaces and non-ASCII are percent-encoded (UTF-8).
_URI_SAFE = "/+=-._~!$&'()*,;:@"


def store_uri(path: str) -> str:
    """The RFC 8089 ``file:`` URI of the absolute path ``path``: ``file:///nix/store/…-glibc-2.40-66``.

    ``path_of_uri(store_uri(p)) == p`` for every absolute path."""
    return "file://" + quote(path, safe=_URI_SAFE)


def path_of_uri(value: str) -> str:
    """The path a statement's ``uri`` names: a ``file:`` URI's decoded path, else ``value`` itself
    (older sbomgen statements carry plain store paths). No validation: the verifier
    confines what it reads (``sbomgen.provenance.store_location``)."""
    if not value.startswith("file:"):
        return value
    try:
        parts = urlsplit(value)
        return unquote(parts.path, errors="strict") if parts.netloc in ("", "localhost") else value
    except (ValueError, UnicodeDecodeError):
        return value


@dataclass(frozen=True, slots=True)
class Subject:
    store_path: str
    nar_sha256: str
    file_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class RunInfo:
    """How and when the build ran, as far as it is known."""

    started: datetime | None = None
    finished: datetime | None = None
    time_source: str = "store-registration"
    """``observed-build`` when sbomgen ran the build; ``store-registration`` when the finish time
    is the output's registration time in the store DB (no start time is known then)."""
    invocation_id: str | None = None
    nix_version: str | None = None
    builder: str | None = None
    args: tuple[str, ...] = ()
    expression: str | None = None
    attributes: tuple[str, ...] = ()
    extra_external: dict[str, str] = field(default_factory=dict)


def _timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def dependency_digest(component: Component) -> dict[str, str]:
    """The digest set of a dependency: NAR hash when built, plus/else what else pins it."""
    digests: dict[str, str] = {}
    if component.nar_hash_hex:
        digests[NAR_SHA256] = component.nar_hash_hex
    fixed = component.fixed_output
    if fixed and fixed.algo == "sha256":
        if fixed.mode == "recursive":
            digests.setdefault(NAR_SHA256, fixed.hash_hex)
        elif fixed.mode == "flat":
            digests[FILE_SHA256] = fixed.hash_hex
    if not digests and component.digest and component.digest[0] is DigestOf.DERIVATION:
        digests[DRV_SHA256] = component.digest[1]
    return digests


def _dependency(component: Component) -> ResourceDescriptor:
    annotations: dict[str, object] = {"purl": component.purl, "nixStorePath": component.store_path}
    if component.drv_path:
        annotations["nixDrvPath"] = component.drv_path
    if component.output:
        annotations["nixOutput"] = component.output
    if component.is_source:
        annotations["nixSource"] = True
    if not component.valid:
        annotations["nixBuilt"] = False
    fixed = component.fixed_output
    if fixed:
        annotations["nixFixedOutputHash"] = f"{fixed.algo}:{fixed.hash_hex}"
        annotations["nixFixedOutputMode"] = fixed.mode
        if len(fixed.urls) > 1:
            annotations["mirrors"] = list(fixed.urls[1:])
    return ResourceDescriptor(
        name=path_name(component.store_path),
        uri=store_uri(component.store_path),
        digest=dependency_digest(component),
        download_location=fixed.urls[0] if fixed and fixed.urls else "",
        annotations=annotations,
    )


def build_statement(graph: DependencyGraph, subjects: list[Subject], run: RunInfo) -> dict:
    """The in-toto Statement (as JSON data) of the build-time ``graph`` producing ``subjects``."""
    root = graph.root_component
    external: dict[str, object] = {"derivation": root.drv_path or "", "outputs": sorted({path_name(s.store_path) for s in subjects})}
    if run.expression:
        external["expression"] = run.expression
    if run.attributes:
        external["attributes"] = list(run.attributes)
    external.update(run.extra_external)
    internal: dict[str, object] = {"timeSource": run.time_source}
    if root.system:
        internal["system"] = root.system
    if run.builder:
        internal["builder"] = run.builder
        internal["args"] = list(run.args)
    if run.nix_version:
        internal["nixVersion"] = run.nix_version
    if graph.depth is not None:
        internal["dependencyDepth"] = str(graph.depth)

    dependencies = [graph.components[p] for p in sorted(graph.components) if p != graph.root]
    definition = provenance_pb2.BuildDefinition(
        build_type=BUILD_TYPE,
        resolved_dependencies=[_dependency(c).pb for c in dependencies],
    )
    definition.external_parameters.update(external)
    definition.internal_parameters.update(internal)

    metadata = provenance_pb2.BuildMetadata()
    if run.invocation_id:
        metadata.invocation_id = run.invocation_id
    if run.started:
        metadata.started_on.CopyFrom(_timestamp(run.started))
    if run.finished:
        metadata.finished_on.CopyFrom(_timestamp(run.finished))
    builder = provenance_pb2.Builder(id=BUILDER_ID, version={"sbomgen": __version__, **({"nix": run.nix_version} if run.nix_version else {})})
    byproducts = []
    if root.drv_path and root.drv_nar_hash_hex:
        byproducts.append(
            ResourceDescriptor(
                name=path_name(root.drv_path), uri=store_uri(root.drv_path), digest={NAR_SHA256: root.drv_nar_hash_hex},
                media_type="application/vnd.nixos.derivation", annotations={"nixStorePath": root.drv_path},
            ).pb
        )
    run_details = provenance_pb2.RunDetails(builder=builder, metadata=metadata, byproducts=byproducts)
    predicate = pb_json.MessageToDict(provenance_pb2.Provenance(build_definition=definition, run_details=run_details))

    subject_rds = []
    for subject in sorted(subjects, key=lambda s: s.store_path):
        if subject.file_sha256:
            digest = {NAR_SHA256: subject.file_sha256, NIX_NAR_SHA256: subject.nar_sha256}
        else:
            digest = {NAR_SHA256: subject.nar_sha256}
        subject_rds.append(
            ResourceDescriptor(
                name=path_name(subject.store_path), uri=store_uri(subject.store_path), digest=digest,
                annotations={"nixStorePath": subject.store_path},
            ).pb
        )
    statement = Statement(subject_rds, PREDICATE_TYPE, predicate)
    statement.validate()
    return _ordered(pb_json.MessageToDict(statement.pb))


_KEY_ORDER = {
    key: rank
    for rank, key in enumerate(
        [
            "_type", "subject", "predicateType", "predicate", "buildDefinition", "runDetails", "buildType",
            "externalParameters", "internalParameters", "resolvedDependencies", "builder", "metadata",
            "byproducts", "id", "version", "builderDependencies", "invocationId", "startedOn", "finishedOn",
            "name", "uri", "digest", "content", "downloadLocation", "mediaType", "annotations",
        ]
    )
}


def _ordered(value):
    """Spec order for known keys, then alphabetical: protobuf Structs keep no order of their own."""
    if isinstance(value, dict):
        return {k: _ordered(value[k]) for k in sorted(value, key=lambda k: (_KEY_ORDER.get(k, len(_KEY_ORDER)), k))}
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    return value


def render_statement(statement: dict) -> str:
    return dumps(statement).decode()
