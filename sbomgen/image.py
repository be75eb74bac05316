"""The image service: a deterministic layered image from a closure, optionally with its SBOMs
(and provenance) attached as OCI 1.1 referrers."""

from __future__ import annotations

import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from sbomgen import limits
from sbomgen.errors import MalformedAttestationError, UsageError
from sbomgen.nix import cli as nix_cli
from sbomgen.nix.store import NixStore
from sbomgen.nix.storepath import path_name, resolve_input
from sbomgen.oci.layering import plan_layers
from sbomgen.oci.writer import (
    BlobStore,
    ImageConfig,
    assemble,
    attach_referrer,
    check_output,
    contents_entries,
    index_referrers,
    referrers_tag,
    store_path_entries,
    write_output,
)

SPDX_TYPE = "application/spdx+json"
CDX_TYPE = "application/vnd.cyclonedx+json"
#: a bare in-toto statement (the in-toto attestation spec's media type, also the DSSE payloadType)
INTOTO_TYPE = "application/vnd.in-toto+json"
#: a DSSE envelope (the DSSE spec's media type; cosign types its attestation layers with it)
DSSE_TYPE = "application/vnd.dsse.envelope.v1+json"


@dataclass(slots=True)
class ImageRequest:
    target: str
    output: str
    name: str | None = None
    tag: str = "latest"
    contents: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    working_dir: str | None = None
    exposed_ports: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()  # KEY=VALUE
    max_layers: int = 100
    fmt: str = "oci"
    attach_sbom: bool = False
    provenance: str | None = None
    db_path: str | None = None
    force: bool = False  # replace a layout sbomgen wrote before at ``output``
    referrers: str = "blobs"  # how index.json lists the referrers: blobs, index or tag (oci.writer.index_referrers)


@dataclass(slots=True)
class ImageResult:
    output: str
    fmt: str
    manifest_digest: str
    layers: list[tuple[str, list[str]]]  # (layer digest, store paths)
    referrers: list[str]
    closure_size: int
    referrers_tag: str | None = None  # the sha256-<hex> tag of the referrers index (--referrers tag)


def _epoch() -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if not value:
        return 1
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"SOURCE_DATE_EPOCH must be whole seconds since 1970, got {value!r}") from None


def _absolute(command: tuple[str, ...], root: str) -> list[str]:
    """``bin/weather`` -> ``<store path>/bin/weather``: relative entrypoints are in the target."""
    if not command:
        return []
    first = command[0]
    return [first if first.startswith("/") else f"{root}/{first}", *command[1:]]


def build_image(request: ImageRequest) -> ImageResult:
    if request.max_layers < 1:
        raise UsageError("--max-layers must be at least 1")
    check_output(request.output, request.fmt, request.force)  # refuse before minutes of packing
    resolved = resolve_input(request.target)
    store = NixStore(resolved.store_dir, db_path=request.db_path)
    store.require_valid(resolved.store_path)
    contents = []
    for item in request.contents:
        extra = resolve_input(item)
        if extra.store_dir != resolved.store_dir:
            raise UsageError(f"{item} is in the store {extra.store_dir}, the target in {resolved.store_dir}")
        store.require_valid(extra.store_path)
        contents.append(extra.store_path)
    roots = [resolved.store_path, *contents]
    closure = store.closure(roots)
    references = {path: tuple(r for r in info.references if r != path) for path, info in closure.items()}
    mtime = _epoch()
    created = datetime.fromtimestamp(mtime, tz=UTC)
    deriver = closure[resolved.store_path].deriver
    system = store.derivation(deriver).system if deriver and store.has_file(deriver) else nix_cli.local_system()
    labels = {}
    for label in request.labels:
        key, sep, value = label.partition("=")
        if not sep or not key:
            raise UsageError(f"--label takes KEY=VALUE, got {label!r}")
        labels[key] = value
    spec = ImageConfig(
        name=request.name or path_name(resolved.store_path),
        tag=request.tag,
        system=system,
        created=created,
        entrypoint=_absolute(request.entrypoint, resolved.store_path),
        cmd=list(request.cmd),
        env=list(request.env),
        working_dir=request.working_dir,
        exposed_ports=list(request.exposed_ports),
        labels=labels,
    )
    plan = plan_layers(references, request.max_layers - (1 if contents else 0))
    scratch = tempfile.mkdtemp(prefix="sbomgen-image-")
    try:
        blobs = BlobStore(scratch)
        # layers are independent: compress them in parallel (zlib and hashlib release the GIL);
        # the order of the results, not of completion, decides the image
        with ThreadPoolExecutor(max_workers=max(1, min(len(plan), os.cpu_count() or 1))) as pool:
            layers = list(pool.map(lambda group: blobs.add_layer(store_path_entries(store.store_dir, group), mtime), plan))
        history = [path_name(g[0]) if len(g) == 1 else f"{len(g)} store paths ({', '.join(path_name(p) for p in g[:3])}, ...)" for g in plan]
        if contents:
            layers.append(blobs.add_layer(contents_entries(contents), mtime))
            history.append("contents: " + ", ".join(path_name(p) for p in contents))
        image = assemble(blobs, spec, layers, history)
        if request.attach_sbom or request.provenance:
            _attach(blobs, image, request, spec)
        tagged = index_referrers(blobs, image, request.referrers)
        write_output(image, spec, request.output, request.fmt, mtime, force=request.force)
        return ImageResult(
            request.output, request.fmt, image.manifest.digest,
            [(layer.digest, group) for layer, group in zip(layers, [*plan, contents] if contents else plan, strict=False)],
            [r.digest for r in image.referrers], len(closure),
            referrers_tag(image.manifest.digest) if tagged else None,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _attach(blobs: BlobStore, image, request: ImageRequest, spec: ImageConfig) -> None:
    """SBOMs of the image as written (read back through the image reader), as referrers.

    The image itself is reproducible whatever the environment (its times are
    ``SOURCE_DATE_EPOCH`` or 1). The SBOMs are dated like standalone ones: the real time and a
    random serial unless ``SOURCE_DATE_EPOCH`` asks for reproducibility, then that time (and the
    referrers' ``created`` annotations with them)."""
    from sbomgen import sbom
    from sbomgen.oci.writer import _write_layout_files

    reproducible = bool(os.environ.get("SOURCE_DATE_EPOCH"))
    now = spec.created if reproducible else datetime.now(UTC).replace(microsecond=0)
    created = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if request.attach_sbom:
        _write_layout_files(image)
        graph = sbom.load_image_graph("oci:" + image.directory, request.db_path)
        outputs = sbom.plan_outputs(spdx_path="image.spdx.json", cdx_path="image.cdx.json", csv_path=None)
        epoch = int(spec.created.timestamp()) if reproducible else None
        for rendered in sbom.render(graph, outputs, epoch=epoch, now=None if reproducible else now):
            media = SPDX_TYPE if rendered.spec.kind == "spdx" else CDX_TYPE
            attach_referrer(blobs, image, rendered.data, media, created)
    if request.provenance:
        payload, media = _provenance_payload(request.provenance)
        attach_referrer(blobs, image, payload, media, created)


def _provenance_payload(path: str) -> tuple[bytes, str]:
    """The bytes of ``--attach-provenance FILE`` and their media type: a DSSE envelope is
    :data:`DSSE_TYPE`, a bare statement :data:`INTOTO_TYPE`; anything else is refused."""
    from sbomgen.formats import dsse

    what = f"--attach-provenance {path}"
    try:
        with open(path, "rb") as handle:
            payload = handle.read(limits.current().max_document_bytes + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {what}: {exc.strerror or exc}") from None
    data = dsse.parse_json(payload, what)
    if dsse.is_envelope(data):
        dsse.decode_envelope(data, what, payload_type=None)  # every field checked, or one line
        return payload, DSSE_TYPE
    if isinstance(data, dict) and isinstance(data.get("_type"), str) and data["_type"].startswith("https://in-toto.io/Statement/"):
        return payload, INTOTO_TYPE
    raise MalformedAttestationError(f"{what}: neither an in-toto statement (no _type https://in-toto.io/Statement/...) nor a DSSE envelope")
