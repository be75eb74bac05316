"""``sbomgen validate`` and ``sbomgen check``: the CI gates."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from sbomgen.cli.common import BOUNDARY_CODES, command, run_guarded
from sbomgen.cli.common import console as make_console
from sbomgen.cli.common import markup_safe as escape
from sbomgen.cli.targets import TargetCommand, resolve, target_options
from sbomgen.fsutil import write_atomic

VALIDATE_HELP = """Validate SBOMs and attestations: SPDX 2.3 (JSON, tag-value), CycloneDX 1.4-1.7
(JSON, XML), in-toto statements and DSSE envelopes, against the official schemas plus semantic
checks (spdx-tools; dangling and duplicate bom-refs), and report NTIA minimum elements.

\b
Exit codes:
   0  every file is valid
   1  a file is invalid
   2  a file is unreadable or of an unknown kind or version
"""

CHECK_HELP = """Check a build (./result, a store path, an image) or an SBOM file against a TOML
policy (docs/ci.md): licences, denied packages, required fields, closure size, provenance,
reproducibility, pinned fetches. Reports as a table, JSON, SARIF 2.1.0 and JUnit XML.

\b
Exit codes:
   0  the policy holds (warnings allowed)
   1  an error-level rule is violated
   2  bad input (unreadable target, malformed policy, ...)
"""


def validate_command(
    files: Annotated[list[str], typer.Argument(metavar="FILE...", help="Documents to validate.", show_default=False)],
    json_out: Annotated[str | None, typer.Option("--json", metavar="FILE", help="Write the results as JSON (- for stdout).")] = None,
) -> None:
    def work() -> None:
        from sbomgen.gate.validate import validate_file

        results = [validate_file(path) for path in files]
        if json_out:
            write_atomic(json_out, json.dumps([r.as_json() for r in results], indent=2) + "\n")
        if json_out != "-":
            console = make_console()
            for result in results:
                verdict = "[green]VALID[/green]" if result.valid else "[red]INVALID[/red]"
                console.print(f"{verdict} {escape(result.path)}: {escape(f'{result.kind} {result.version} ({result.encoding})')}")
                for error in result.errors[:50]:
                    console.print(f"  {escape(result.path)}:{escape(error.pointer or '/')}: {escape(error.message)}")
                if len(result.errors) > 50:
                    console.print(f"  … {len(result.errors) - 50} more errors")
                if result.ntia_missing:
                    gaps = ", ".join(f"{k} ({v} of {result.components})" for k, v in result.ntia_missing.items())
                    console.print(f"  NTIA minimum elements missing: {gaps}")
                elif result.components:
                    console.print(f"  NTIA minimum elements: all present for {result.components} components")
        if not all(r.valid for r in results):
            raise typer.Exit(1)

    run_guarded(work, error_code=2)


def check_command(
    target: Annotated[str | None, typer.Argument(metavar="TARGET", help="./result, a store path, an image, an SBOM (SPDX/CycloneDX JSON), FILE.nix or PATH#ATTR (or -f FILE.nix -A ATTR).", show_default=False)] = None,
    policy_path: Annotated[str, typer.Option("--policy", metavar="FILE", help="The policy (TOML).")] = "policy.toml",
    provenance_path: Annotated[str | None, typer.Option("--provenance", metavar="FILE", help="Provenance of TARGET (overrides the policy's file).")] = None,
    key_paths: Annotated[list[str] | None, typer.Option("--key", metavar="FILE", help="PEM public key the provenance must be signed with (repeatable; adds to [provenance] key).")] = None,
    buildtime: Annotated[bool, typer.Option("--buildtime", help="Check the build-time closure instead of the runtime one.")] = False,
    meta: Annotated[str | None, typer.Option("--meta", metavar="FILE", help="nixpkgs metadata (nix-env -qa --meta --json --out-path) to merge, matched by output path.")] = None,
    meta_match_names: Annotated[bool, typer.Option("--meta-match-names", help="Also match --meta entries by exact derivation name.")] = False,
    sarif: Annotated[str | None, typer.Option("--sarif", metavar="FILE", help="Write SARIF 2.1.0.")] = None,
    junit: Annotated[str | None, typer.Option("--junit", metavar="FILE", help="Write JUnit XML (one test case per rule).")] = None,
    json_out: Annotated[str | None, typer.Option("--json", metavar="FILE", help="Write the results as JSON (- for stdout).")] = None,
) -> None:
    def work() -> None:
        from sbomgen.gate import reports
        from sbomgen.gate.policy import load_policy
        from sbomgen.gate.rules import evaluate

        chosen = resolve(target)
        policy = load_policy(policy_path)
        if provenance_path:
            policy.provenance_file = provenance_path
        verify_keys = _verify_keys([*policy.provenance_keys, *(key_paths or [])])
        inventory, context = _inventory(chosen, buildtime, meta, policy, meta_match_names)
        context.verify_keys = verify_keys
        results = evaluate(policy, inventory, context)
        outputs = []
        if sarif:
            outputs.append((sarif, reports.sarif_text(reports.as_sarif(results, str(chosen), policy_path))))
        if junit:
            outputs.append((junit, reports.as_junit(results, str(chosen))))
        if json_out:
            outputs.append((json_out, json.dumps(reports.as_json(results, str(chosen), policy_path), indent=2) + "\n"))
        for path, text in outputs:
            write_atomic(path, text)
        if json_out != "-":
            _print_table(results, str(chosen), len(inventory.items) + 1)
        if reports.errors(results):
            raise typer.Exit(1)

    run_guarded(work, error_code=2)


def _verify_keys(paths: list[str]) -> list:
    """The keys provenance must be signed with; a bad key file fails before any work."""
    from sbomgen.keys import load_verify_key

    return [load_verify_key(path) for path in dict.fromkeys(paths)]


def _inventory(target, buildtime: bool, meta: str | None, policy, meta_match_names: bool = False):
    """An inventory of TARGET, and what else the rules may use."""
    import os

    from sbomgen.errors import NotInStoreError
    from sbomgen.gate.documents import detect, from_document, from_graph, refuse_special_file
    from sbomgen.gate.rules import CheckContext
    from sbomgen.nix.evaluate import ExpressionTarget
    from sbomgen.nix.storepath import resolve_input
    from sbomgen.sbom import as_target, load_graph, looks_like_image

    target = as_target(target)
    is_store = isinstance(target, ExpressionTarget)
    if not is_store:
        refuse_special_file(target)  # before anything sniffs it: a FIFO blocked check
        if not looks_like_image(target):
            try:
                resolve_input(target)
                is_store = True
            except NotInStoreError:
                is_store = False
        if not is_store and not looks_like_image(target) and os.path.isfile(target):
            return from_document(detect(target)), CheckContext()
    loaded = load_graph(target, buildtime=buildtime, meta_file=meta, meta_match_names=meta_match_names)
    label = str(target)
    inventory = from_graph(loaded.graph, label)
    context = CheckContext()
    if is_store and policy.fixed_hash_fetches:
        context.buildtime = inventory if buildtime else from_graph(
            load_graph(target, buildtime=True, meta_file=meta, meta_match_names=meta_match_names).graph, label)
    if is_store and policy.reproducible:
        # an expression is rebuilt as the derivation it evaluated to
        rebuilt = loaded.evaluation.drv_path if loaded.evaluation is not None else target
        context.rebuild = lambda: _rebuild(rebuilt)
    return inventory, context


def _rebuild(target: str) -> tuple[bool, str]:
    from sbomgen.verify.rebuild import rebuild

    (result,) = rebuild(target)
    if result.status == "reproducible":
        return True, ""
    detail = result.message or ", ".join(f"{c.causes()}" for c in result.comparisons)
    return False, f"{result.status}: {detail}"


def _print_table(results, target: str, components: int) -> None:
    console = make_console()
    table = Table(title=f"Policy check of {escape(target)} ({components} components)")
    for column in ("rule", "level", "result", "details"):
        table.add_column(column)
    for result in results:
        status = "[green]pass[/green]" if result.passed else ("[red]FAIL[/red]" if result.level == "error" else "[yellow]warn[/yellow]")
        if not result.checked:
            status = "[yellow]not checked[/yellow]" if result.level == "warning" else "[red]FAIL[/red]"
        details = "; ".join(v.message for v in result.violations[:3])
        if len(result.violations) > 3:
            details += f"; … {len(result.violations) - 3} more"
        table.add_row(escape(result.rule), escape(result.level), status, escape(details or result.note))
    console.print(table)
    from sbomgen.gate.reports import errors

    count = errors(results)
    console.print("[red]policy violated[/red]" if count else "[green]policy holds[/green]", f"({count} error(s))" if count else "")


def register(app: typer.Typer) -> None:
    app.command("validate", help=VALIDATE_HELP + BOUNDARY_CODES)(command(limits=True)(validate_command))
    app.command("check", help=CHECK_HELP + BOUNDARY_CODES, cls=TargetCommand)(command(limits=True)(target_options(check_command)))
