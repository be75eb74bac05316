"""The SBOM service: from what the user typed to rendered, validated documents.

This is the only place that strings the layers together (nix -> graph -> formats); the CLI
parses arguments and calls :func:`load_graph`, :func:`plan_outputs` and :func:`render`.
Everything is rendered and validated in memory before any file is written.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass, field
from datetime import datetime

from sbomgen.bulk import bulk
from sbomgen.errors import DocumentInvalidError, InvalidStorePathError, MetadataError, OutputFormatError, UsageError, first_of
from sbomgen.formats import csv as csv_format
from sbomgen.formats import cyclonedx, spdx
from sbomgen.formats.context import DocumentContext, parse_supplier
from sbomgen.formats.jsontext import dumps
from sbomgen.formats.spdx_rules import spdx_rule_errors
from sbomgen.graph.closure import buildtime_graph, runtime_graph
from sbomgen.graph.image import image_graph
from sbomgen.graph.meta import apply_evaluated_meta, apply_meta, load_meta
from sbomgen.graph.model import DependencyGraph
from sbomgen.nix.evaluate import Evaluation, ExpressionTarget, evaluate, flake_target, looks_like_flake_ref
from sbomgen.nix.store import NixStore
from sbomgen.nix.storepath import resolve_input
from sbomgen.oci.contents import read_contents, scratch_dir
from sbomgen.oci.reader import is_image, open_image
from sbomgen.schemas import cyclonedx_xml_errors, schema_errors

IMAGE_PREFIXES = ("oci:", "oci-archive:", "docker-archive:")


def looks_like_image(target: str) -> bool:
    """``oci:``/``oci-archive:``/``docker-archive:`` specs, image files, and OCI layout directories."""
    if target.startswith(IMAGE_PREFIXES):
        return True
    try:
        mode = os.stat(target).st_mode
    except (OSError, ValueError):  # missing, a symlink loop, a NUL in the name: not an image
        return False
    # only a file or a directory is sniffed: opening a FIFO would wait for a writer forever
    return (stat.S_ISREG(mode) or stat.S_ISDIR(mode)) and is_image(target)


def load_image_graph(target: str, db_path: str | None = None) -> DependencyGraph:
    """Open an image, read every layer, and describe what it contains."""
    image = open_image(target)
    scratch = scratch_dir()
    try:
        return image_graph(read_contents(image, scratch), db_path)
    finally:
        image.close()
        shutil.rmtree(scratch, ignore_errors=True)


@dataclass(slots=True)
class GraphResult:
    graph: DependencyGraph
    store: NixStore | None
    meta_entries: int = 0
    meta_matched: int = 0
    evaluation: Evaluation | None = None
    evaluated_matched: int = 0


#: what a command accepts as its target: a path (``./result``, a store path, a ``.drv``, an
#: image), or an expression / flake reference (:class:`ExpressionTarget`)
Target = str | ExpressionTarget


def as_target(target: Target) -> Target:
    """``PATH#ATTR`` strings that name no file become flake targets; the rest is unchanged."""
    if isinstance(target, str) and looks_like_flake_ref(target):
        return flake_target(target)
    return target


@dataclass(slots=True)
class ResolvedTarget:
    """A target resolved to a store path (an output or a ``.drv``) in an opened store."""

    store: NixStore
    store_path: str
    evaluation: Evaluation | None = None


def resolve_store_target(target: Target, *, buildtime: bool, db_path: str | None = None) -> ResolvedTarget:
    """Open the store of ``target`` and find what to walk.

    An expression or flake is evaluated (once: its ``.drv`` files written, its metadata read);
    a build-time walk then starts at the ``.drv`` (nothing is built); a runtime walk needs the
    selected output valid in the store, and otherwise says how to build it (exit 5)."""
    target = as_target(target)
    if isinstance(target, ExpressionTarget):
        evaluation = evaluate(target)
        store = NixStore(os.path.dirname(evaluation.drv_path), db_path=db_path)
        store.require_valid(evaluation.drv_path)
        built = store.is_valid(evaluation.out_path)
        if buildtime:
            # the selected output roots the graph when it is built (glibc.dev), else the .drv
            default = evaluation.output_name == evaluation.output_names[0]
            path = evaluation.drv_path if default or not built else evaluation.out_path
            return ResolvedTarget(store, path, evaluation)
        if not built:
            raise InvalidStorePathError(
                f"{target.describe()} is not built ({evaluation.out_path} is not in the store): "
                f"build it first: {target.build_hint()} (or ask for --buildtime, which needs no build)"
            )
        return ResolvedTarget(store, evaluation.out_path, evaluation)
    resolved = resolve_input(target)
    store = NixStore(resolved.store_dir, db_path=db_path)
    store.require_valid(resolved.store_path)
    return ResolvedTarget(store, resolved.store_path)


@bulk
def load_graph(
    target: Target,
    *,
    buildtime: bool = False,
    depth: int | None = None,
    meta_file: str | None = None,
    db_path: str | None = None,
    meta_match_names: bool = False,
) -> GraphResult:
    """Resolve ``target`` (``./result``, a store path, a ``.drv``, an image, ``-f FILE -A ATTR``,
    a flake reference) and walk it; merge metadata keyed by derivation (evaluation) and by
    output path (``meta_file``; by name only with ``meta_match_names``)."""
    meta_index = load_meta(meta_file) if meta_file else None  # fail early on a bad --meta
    if meta_index is not None and not meta_match_names and len(meta_index) and not meta_index.has_out_paths:
        raise MetadataError(
            f"metadata file {meta_file} has no output paths to match components by: make it with "
            "`nix-env -qa --meta --json --out-path`, or pass --meta-match-names to match by derivation name"
        )
    target = as_target(target)
    if isinstance(target, str) and looks_like_image(target):
        if buildtime:
            raise UsageError(f"{target} is an image: it has no build-time graph (give the store path it was built from)")
        graph = load_image_graph(target, db_path)
        result = GraphResult(graph, None)
    else:
        resolved = resolve_store_target(target, buildtime=buildtime, db_path=db_path)
        walk = buildtime_graph if buildtime else runtime_graph
        graph = walk(resolved.store, resolved.store_path, depth)
        result = GraphResult(graph, resolved.store, evaluation=resolved.evaluation)
        if resolved.evaluation is not None:
            result.evaluated_matched = apply_evaluated_meta(graph, resolved.evaluation.packages)
    if meta_index is not None:
        result.meta_entries = len(meta_index)
        result.meta_matched = apply_meta(graph, meta_index, match_names=meta_match_names)
    return result


@dataclass(frozen=True, slots=True)
class OutputSpec:
    kind: str  # "spdx" | "cyclonedx" | "csv"
    path: str
    fmt: str  # "json" | "tag-value" | "xml" | "csv"
    version: str = ""


_SPDX_EXT = {".json": "json", ".spdx": "tag-value", ".tv": "tag-value", ".tag": "tag-value"}
_CDX_EXT = {".json": "json", ".xml": "xml"}


def _format_for(path: str, explicit: str | None, table: dict[str, str], what: str, choices: tuple[str, ...]) -> str:
    if explicit:
        if explicit not in choices:
            raise OutputFormatError(f"unknown {what} format {explicit!r} (choose from: {', '.join(choices)})")
        return explicit
    if path == "-":
        return choices[0]
    for ext, fmt in table.items():
        if path.lower().endswith(ext):
            return fmt
    raise OutputFormatError(
        f"cannot tell the {what} format of {path!r} from its extension "
        f"({', '.join(table)}); pass --{'spdx' if what == 'SPDX' else 'cdx'}-format"
    )


def plan_outputs(
    *,
    spdx_path: str | None,
    cdx_path: str | None,
    csv_path: str | None,
    spdx_format: str | None = None,
    cdx_format: str | None = None,
    cdx_version: str = cyclonedx.DEFAULT_VERSION,
) -> list[OutputSpec]:
    """Which files to write; with none asked for, ``sbom.spdx.json`` and ``sbom.cdx.json``."""
    if cdx_version not in cyclonedx.VERSIONS:
        raise OutputFormatError(
            f"unsupported CycloneDX version {cdx_version!r} (choose from: {', '.join(cyclonedx.VERSIONS)})"
        )
    if not (spdx_path or cdx_path or csv_path):
        spdx_path, cdx_path = "sbom.spdx.json", "sbom.cdx.json"
    outputs = []
    if spdx_path:
        outputs.append(OutputSpec("spdx", spdx_path, _format_for(spdx_path, spdx_format, _SPDX_EXT, "SPDX", spdx.FORMATS)))
    if cdx_path:
        outputs.append(
            OutputSpec("cyclonedx", cdx_path, _format_for(cdx_path, cdx_format, _CDX_EXT, "CycloneDX", cyclonedx.FORMATS), cdx_version)
        )
    if csv_path:
        outputs.append(OutputSpec("csv", csv_path, "csv"))
    if sum(1 for o in outputs if o.path == "-") > 1:
        raise OutputFormatError("only one output can go to stdout ('-')")
    return outputs


@dataclass(slots=True)
class Rendered:
    spec: OutputSpec
    data: bytes
    checks: list[str] = field(default_factory=list)


@bulk
def render(
    graph: DependencyGraph,
    outputs: list[OutputSpec],
    *,
    validate: bool = True,
    full_validation: bool = False,
    epoch: int | None = None,
    now: datetime | None = None,
    supplier: str | None = None,
) -> list[Rendered]:
    """Render every requested output; with ``validate``, check each before anything is written.

    JSON documents are checked against their official schema (jsonschema-rs) and the rules a
    schema cannot express: SPDX's (:mod:`sbomgen.formats.spdx_rules`) and CycloneDX's unique
    and resolvable ``bom-ref``s.  CycloneDX XML is checked against the official XSD.  SPDX goes
    through spdx-tools' own validation too with ``full_validation`` (5 s for 40,000 packages,
    where the checks above take 0.5 s), and always for tag-value, which is written from
    spdx-tools' model.  A failure is a bug in sbomgen: :class:`DocumentInvalidError`.
    Each document is turned into bytes as soon as it is checked, so at most one is held as
    Python objects.
    """
    context = DocumentContext.for_graph(graph, now=now, epoch=epoch, supplier=parse_supplier(supplier) if supplier is not None else None)
    components = graph.sorted_components()
    spdx_model = bom = None
    rendered = []
    for spec in outputs:
        checks: list[str] = []
        if spec.kind == "spdx":
            if (validate and full_validation) or spec.fmt != "json":
                spdx_model = spdx_model or spdx.build_spdx(graph, context)
                if validate:
                    _raise_if(spdx.validate_spdx(spdx_model), "spdx-tools", spec)
                    checks.append("spdx-tools")
            if spec.fmt == "json":
                document = spdx.spdx_json_document(graph, context, components)
                if validate:
                    _raise_if(schema_errors("spdx-2.3", document), "schema spdx-2.3", spec)
                    _raise_if(spdx_rule_errors(document), "SPDX rules", spec)
                    checks += ["schema spdx-2.3", "SPDX rules"]
                data = dumps(document)
                del document
            else:
                data = spdx.render_spdx(spdx_model, spec.fmt).encode()
        elif spec.kind == "cyclonedx":
            if spec.fmt == "json":
                document = cyclonedx.cyclonedx_json_document(graph, context, spec.version, components)
                if validate:
                    _raise_if(schema_errors(f"cyclonedx-{spec.version}", document), f"schema cyclonedx-{spec.version}", spec)
                    _raise_if(cyclonedx.reference_errors(document), "bom-refs", spec)
                    checks += [f"schema cyclonedx-{spec.version}", "bom-refs"]
                data = dumps(document)
                del document
            else:
                bom = bom or cyclonedx.build_cyclonedx(graph, context)
                data = cyclonedx.render_cyclonedx(bom, spec.fmt, spec.version).encode()
                if validate:
                    _raise_if(cyclonedx_xml_errors(spec.version, data), f"XSD cyclonedx-{spec.version}", spec)
                    checks.append(f"XSD cyclonedx-{spec.version}")
        else:
            data = csv_format.render_csv(graph).encode()
        rendered.append(Rendered(spec, data, checks))
    return rendered


def _raise_if(problems: list[str], check: str, spec: OutputSpec) -> None:
    if problems:
        raise DocumentInvalidError(f"generated {spec.kind} document for {spec.path} fails {check}: {first_of(problems)}")
