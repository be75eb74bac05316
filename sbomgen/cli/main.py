"""``sbomgen``: the command users type.  Typer apps only: parse, call the service, map errors.

``sbomgen ./result --depth=2`` is short for ``sbomgen sbom ./result --depth=2``: when the first
argument is not a sub-command, ``sbom`` is implied.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import nullcontext
from enum import Enum
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from sbomgen.cli.common import DefaultCommandGroup, command, console, exit_code_table, make_app, markup_safe, printable, run_app, run_guarded
from sbomgen.cli.targets import TargetCommand, target_options
from sbomgen.errors import EXIT_CODES
from sbomgen.fsutil import check_writable, is_stdout, write_atomic_bytes
from sbomgen.graph.model import GraphKind


class SbomGroup(DefaultCommandGroup):
    default_command = "sbom"


app = make_app(
    SbomGroup,
    "sbomgen",
    "Supply-chain evidence for Nix builds.\n\n"
    "sbomgen ./result --depth=2   writes sbom.spdx.json (SPDX 2.3) and sbom.cdx.json (CycloneDX 1.6).\n\n"
    + exit_code_table(EXIT_CODES),
)


class SpdxFormat(str, Enum):
    json = "json"
    tag_value = "tag-value"


class CdxFormat(str, Enum):
    json = "json"
    xml = "xml"


def _size_phrase(summary: dict) -> str:
    """The closure's NAR size; unbuilt outputs have none, so then it is the built part's."""
    size = _human_size(summary["nar_size"])
    if not summary["not_built"]:
        return f"{size} in total"
    if summary["not_built"] == summary["components"]:
        return "sizes unknown (nothing built)"
    return f"{size} built ({summary['not_built']} outputs not built, sizes unknown)"


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


@app.command("sbom", cls=TargetCommand)
@command(limits=True)
@target_options
def sbom_command(
    target: Annotated[str | None, typer.Argument(metavar="TARGET", help="./result symlink, store path (any output), .drv path, image, FILE.nix, or flake PATH#ATTR (or -f FILE.nix -A ATTR).", show_default=False)] = None,
    buildtime: Annotated[bool, typer.Option("--buildtime", help="Build-time closure (derivation graph) instead of runtime references.")] = False,
    depth: Annotated[int | None, typer.Option("--depth", min=0, metavar="N", help="Only dependencies up to N steps from the target (1 = direct).")] = None,
    spdx_path: Annotated[str | None, typer.Option("--spdx", metavar="FILE", help="Write SPDX 2.3 here (.json, or .spdx/.tv for tag-value; - for stdout).")] = None,
    cdx_path: Annotated[str | None, typer.Option("--cdx", metavar="FILE", help="Write CycloneDX here (.json or .xml; - for stdout).")] = None,
    csv_path: Annotated[str | None, typer.Option("--csv", metavar="FILE", help="Write a CSV of the components here.")] = None,
    spdx_format: Annotated[SpdxFormat | None, typer.Option("--spdx-format", help="SPDX format, when the extension does not say.")] = None,
    cdx_format: Annotated[CdxFormat | None, typer.Option("--cdx-format", help="CycloneDX format, when the extension does not say.")] = None,
    cdx_version: Annotated[str, typer.Option("--cdx-version", metavar="VERSION", help="CycloneDX schema version: 1.5, 1.6 or 1.7.")] = "1.6",
    meta: Annotated[str | None, typer.Option("--meta", metavar="FILE", help="nixpkgs metadata (nix-env -qa --meta --json --out-path output), matched by output path.")] = None,
    supplier: Annotated[str | None, typer.Option("--supplier", metavar="ACTOR", help="Supplier of your own components (the target, and those no nixpkgs metadata describes): 'Organization: NAME' or 'Person: NAME', optionally ' (EMAIL)'.")] = None,
    meta_match_names: Annotated[bool, typer.Option("--meta-match-names", help="Also match --meta entries by exact derivation name (marked nix:meta_source=meta-file:name).")] = False,
    db: Annotated[str | None, typer.Option("--db", metavar="FILE", help="Nix store database (default: $NIX_STATE_DIR/db/db.sqlite).")] = None,
    validate: Annotated[bool, typer.Option("--validate/--no-validate", help="Check documents before writing: official schemas, SPDX rules, bom-refs.")] = True,
    full_validation: Annotated[bool, typer.Option("--full-validation", help="Also run spdx-tools' validation of the SPDX model (5 s per 40,000 packages).")] = False,
    json_summary: Annotated[bool, typer.Option("--json", help="Print the summary as JSON; no progress output.")] = False,
    output_format: Annotated[str | None, typer.Option("--format", metavar="FORMAT", help="'table': print the components as a table instead of writing documents (unless --spdx/--cdx/--csv are given too).")] = None,
) -> None:
    """Write SBOMs (SPDX 2.3, CycloneDX 1.6) of a Nix build's runtime or build-time closure.

    With no --spdx/--cdx/--csv, writes sbom.spdx.json and sbom.cdx.json.
    """
    from sbomgen import sbom

    def work() -> None:
        from sbomgen.cli.targets import resolve
        from sbomgen.errors import OutputFormatError

        started = time.perf_counter()
        chosen = resolve(target)
        if output_format not in (None, "table"):
            raise OutputFormatError(f"unknown --format {output_format!r} (choose: table)")
        if output_format == "table" and not (spdx_path or cdx_path or csv_path):
            result = sbom.load_graph(chosen, buildtime=buildtime, depth=depth, meta_file=meta, db_path=db, meta_match_names=meta_match_names)
            _print_table(result.graph)
            return
        if supplier is not None:
            from sbomgen.formats.context import parse_supplier

            parse_supplier(supplier)  # fail before reading the store
        outputs = sbom.plan_outputs(
            spdx_path=spdx_path,
            cdx_path=cdx_path,
            csv_path=csv_path,
            spdx_format=spdx_format.value if spdx_format else None,
            cdx_format=cdx_format.value if cdx_format else None,
            cdx_version=cdx_version,
        )
        for output in outputs:
            check_writable(output.path)
        to_stdout = any(is_stdout(o.path) for o in outputs)
        err = console(stderr=True)
        show_progress = err.is_terminal and not json_summary
        closure = "build-time" if buildtime else "runtime"
        with err.status(f"Reading the {closure} closure of {markup_safe(str(chosen))}…") if show_progress else nullcontext():
            result = sbom.load_graph(chosen, buildtime=buildtime, depth=depth, meta_file=meta, db_path=db, meta_match_names=meta_match_names)
        graph = result.graph
        with err.status("Building and validating documents…") if show_progress else nullcontext():
            rendered = sbom.render(graph, outputs, validate=validate, full_validation=full_validation, supplier=supplier)
        for item in rendered:
            write_atomic_bytes(item.spec.path, item.data)
        elapsed = time.perf_counter() - started
        summary = _summary(result, rendered, elapsed)
        if json_summary:
            (sys.stderr if to_stdout else sys.stdout).write(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        elif not to_stdout:
            _print_summary(summary)
        elif sys.stderr.isatty():
            _print_summary(summary, console(stderr=True))

    run_guarded(work)


def _print_table(graph) -> None:
    from rich.table import Table

    image = graph.kind is GraphKind.IMAGE
    root = graph.root_component
    table = Table(title=markup_safe(f"{root.name} {root.version} ({graph.kind.value} closure)".replace("  ", " ")))
    for column in ("name", "version", "output", "size", "license", "layer" if image else "depth"):
        table.add_column(column, justify="right" if column in ("size", "depth") else "left")
    for component in graph.sorted_components():
        licences = component.license_expression or "-"
        if image:
            where = "all" if component.store_path == graph.root else component.extra.get("oci:layers", "")[:19]
        else:
            where = str(component.depth)
        cells = (component.name, component.version or "-", component.output or "-",
                 _human_size(component.nar_size) if component.nar_size is not None else "-", licences, where or "-")
        table.add_row(*(markup_safe(cell) for cell in cells))
    console().print(table)


def _summary(result, rendered, elapsed: float) -> dict:
    graph = result.graph
    components = list(graph.components.values())
    from sbomgen.graph.licensing import leaves, parse

    licences: dict[str, int] = {}
    for c in components:
        expression = c.license_expression
        # each licence of the expression, with its exception: "Apache-2.0 WITH LLVM-exception"
        for term in dict.fromkeys(str(leaf) for leaf in leaves(parse(expression))) if expression else ():
            licences[term] = licences.get(term, 0) + 1
    root = graph.root_component
    return {
        "target": root.store_path,
        "name": root.name,
        "version": root.version,
        "closure": graph.kind.value,
        "depth": graph.depth,
        "components": len(components),
        "sources": sum(1 for c in components if c.is_source or c.fixed_output),
        "not_built": sum(1 for c in components if not c.valid),
        "with_digest": sum(1 for c in components if c.digest),
        "without_version": sorted(c.name for c in components if not c.version),
        "missing_metadata": {
            "license": sum(1 for c in components if not c.licenses and not c.is_source and not c.fixed_output),
            "description": sum(1 for c in components if not (c.meta and c.meta.description) and not c.is_source and not c.fixed_output),
        },
        "nar_size": graph.total_nar_size,
        "licenses": dict(sorted(licences.items())),
        "meta": {"entries": result.meta_entries, "matched": result.meta_matched, "evaluated": result.evaluated_matched},
        "outputs": [
            {"path": r.spec.path, "kind": r.spec.kind, "format": r.spec.fmt, "version": r.spec.version, "validated": r.checks}
            for r in rendered
        ],
        "seconds": round(elapsed, 3),
    }


def _print_summary(summary: dict, out: Console | None = None) -> None:
    out = out or console()
    safe = markup_safe
    kind = {GraphKind.RUNTIME.value: "runtime closure", GraphKind.BUILDTIME.value: "build-time closure"}.get(summary["closure"], "image")
    depth = "" if summary["depth"] is None else f", depth {summary['depth']}"
    label = f"{summary['name']} {summary['version']}".strip()
    out.print(Text.assemble((printable(label), "bold"), "  ", printable(summary["target"])))
    out.print(
        f"  {summary['components']} components in the {kind}{depth}: "
        f"{summary['sources']} sources, {summary['not_built']} not built, "
        f"{summary['with_digest']} with a SHA-256 digest, {_size_phrase(summary)}"
    )
    if summary["meta"]["evaluated"]:
        out.print(f"  metadata: {summary['meta']['evaluated']} components from the evaluation (keyed by derivation)")
    if summary["meta"]["entries"]:
        out.print(f"  metadata: {summary['meta']['matched']} components matched {summary['meta']['entries']} entries")
    if summary["licenses"]:
        top = ", ".join(f"{k} ({v})" for k, v in sorted(summary["licenses"].items(), key=lambda kv: (-kv[1], kv[0])))
        out.print(f"  licences: {safe(top)}")
    missing = summary["missing_metadata"]
    if missing["license"] or missing["description"]:
        given = summary["meta"]["entries"] or summary["meta"]["evaluated"]
        hint = "" if given else " (give --meta FILE, or evaluate the expression: -f FILE.nix -A ATTR)"
        out.print(f"  missing metadata: {missing['license']} without a licence, {missing['description']} without a description{hint}")
    if summary["without_version"]:
        out.print(f"  no version: {safe(', '.join(summary['without_version']))}")
    for item in summary["outputs"]:
        what = {"spdx": "SPDX 2.3", "cyclonedx": f"CycloneDX {item['version']}", "csv": "CSV"}[item["kind"]]
        checked = f"  (valid: {', '.join(item['validated'])})" if item["validated"] else ""
        out.print(f"  wrote {safe(item['path'])}: {what} {item['format']}{checked}")
    out.print(f"  done in {summary['seconds']:.2f} s")


@app.command("build")
@command()
def build_command(
    expression: Annotated[str, typer.Argument(metavar="FILE.nix", help="The Nix expression to build.", show_default=False)],
    attribute: Annotated[str | None, typer.Option("--attr", "-A", metavar="ATTR", help="Attribute to build (default: the expression itself).")] = None,
    out_link: Annotated[str, typer.Option("--out-link", "-o", metavar="LINK", help="The result symlink nix-build makes.")] = "result",
    provenance_path: Annotated[str | None, typer.Option("--provenance", metavar="FILE", help="Where to write the provenance (default: LINK.intoto.json, or LINK.intoto.dsse.json when signed).")] = None,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Every dependency of the build closure in the provenance.")] = False,
    sign_key: Annotated[str | None, typer.Option("--sign-key", metavar="FILE", help="PEM private key: sign the provenance (DSSE).")] = None,
) -> None:
    """Build with nix-build and write SLSA v1 provenance with the real start and finish times."""

    def work() -> None:
        from sbomgen import keys, provenance
        from sbomgen.cli.provenance import write_statement
        from sbomgen.nix import cli as nix_cli

        if sign_key:
            keys.load_signing_key(sign_key)  # fail before building
        attrs = [attribute] if attribute else []
        err = console(stderr=True)
        with err.status(markup_safe(f"nix-build {expression}{' -A ' + attribute if attribute else ''}…")) if err.is_terminal else nullcontext():
            built = nix_cli.build(expression, attrs, out_link)
        run = provenance.observed_run(built.started, built.finished, nix_cli.nix_version(), expression, attrs)
        made = provenance.make_statement(built.outputs[0], recursive=recursive, run=run)
        target = provenance_path or f"{out_link}.intoto{'.dsse' if sign_key else ''}.json"
        write_statement(made.statement, target, sign_key)
        seconds = (built.finished - built.started).total_seconds()
        deps = len(made.statement["predicate"]["buildDefinition"].get("resolvedDependencies", []))
        print(printable(f"built {built.outputs[0]} in {seconds:.2f} s"))
        print(printable(f"wrote {target}: {'signed ' if sign_key else ''}provenance with {deps} resolved dependencies"))

    run_guarded(work)


from sbomgen.cli import diff as _diff  # noqa: E402 - these register their commands on app
from sbomgen.cli import gate as _gate  # noqa: E402
from sbomgen.cli import graph as _graph  # noqa: E402
from sbomgen.cli import image as _image  # noqa: E402

_diff.register(app)
_image.register(app)
_gate.register(app)
_graph.register(app)


def main() -> None:
    run_app(app, "sbomgen")


if __name__ == "__main__":
    main()
