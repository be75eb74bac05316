"""``sbomgen diff`` and ``sbomgen rebuild``: the reproducibility commands."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from sbomgen.cli.common import BOUNDARY_CODES, command, printable, run_guarded
from sbomgen.cli.common import console as make_console
from sbomgen.cli.common import markup_safe as escape
from sbomgen.fsutil import write_atomic

DIFF_HELP = """Compare two builds bit for bit: store paths or directories, files, tar/tar.gz/tar.zst,
OCI layouts (oci:DIR), oci-archives and docker-archives.

\b
Exit codes:
   0  identical
   1  different
   2  bad input (missing path, truncated archive, not an image, ...)
"""


def print_comparison(comparison, max_differences: int, console: Console) -> None:
    diffs = comparison.differences
    if comparison.identical:
        nar = comparison.facts.get("left_nar_sha256")
        extra = f", NAR sha256 {nar}" if nar else ""
        console.print(f"[green]IDENTICAL[/green]: {escape(comparison.left)} and {escape(comparison.right)} ({comparison.kind}{extra})")
        return
    causes = ", ".join(f"{k}: {v}" for k, v in comparison.causes().items())
    console.print(
        f"[red]DIFFERENT[/red]: {escape(comparison.left)} vs {escape(comparison.right)} ({escape(comparison.kind)}): "
        f"{len(diffs)} difference(s) ({escape(causes)})"
    )
    last_path = None
    for diff in diffs[:max_differences]:
        if diff.path != last_path:
            console.print(f"  {escape(diff.path)}")
            last_path = diff.path
        cause = f" \\[{diff.cause.value}]" if diff.cause else ""
        before = "-" if diff.before is None else diff.before
        after = "-" if diff.after is None else diff.after
        console.print(f"    {diff.kind.value}{cause}: {escape(before)} -> {escape(after)}")
        if diff.detail:
            for line in diff.detail.splitlines()[:12]:
                console.print(f"      {escape(line)}")
    if len(diffs) > max_differences:
        console.print(f"  … {len(diffs) - max_differences} more (raise --max-differences)")


def diff_command(
    left: Annotated[str, typer.Argument(metavar="A", help="The first build.", show_default=False)],
    right: Annotated[str, typer.Argument(metavar="B", help="The second build.", show_default=False)],
    json_path: Annotated[str | None, typer.Option("--json", metavar="FILE", help="Write the report as JSON (- for stdout).")] = None,
    max_differences: Annotated[int, typer.Option("--max-differences", min=1, metavar="N", help="Show at most N differences.")] = 50,
) -> None:
    def work() -> None:
        from sbomgen.verify.dispatch import compare

        comparison = compare(left, right)
        if json_path:
            write_atomic(json_path, json.dumps(comparison.as_json(max_differences), indent=2) + "\n")
        if json_path != "-":
            print_comparison(comparison, max_differences, make_console())
        if not comparison.identical:
            raise typer.Exit(1)

    run_guarded(work, error_code=2)



REBUILD_HELP = """Rebuild a Nix derivation (nix-store --check) and diff what differs, per derivation.

With --recursive, every derivation of the build closure (fixed-output ones are skipped: Nix
checks them by hash), with a summary table and the percentage reproducible.

\b
Exit codes:
   0  every rebuilt derivation is reproducible
   1  at least one differs, or failed to rebuild
   2  bad input (not a store path, not built, ...)
"""


def rebuild_command(
    target: Annotated[str, typer.Argument(metavar="TARGET", help="./result, a store path or a .drv whose outputs are built.", show_default=False)],
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Every derivation of the build closure.")] = False,
    json_path: Annotated[str | None, typer.Option("--json", metavar="FILE", help="Write the report as JSON (- for stdout).")] = None,
    max_differences: Annotated[int, typer.Option("--max-differences", min=1, metavar="N", help="Show at most N differences per output.")] = 20,
    keep_check: Annotated[bool, typer.Option("--keep-check", help="Keep the <out>.check paths Nix leaves when an output differs.")] = False,
) -> None:
    def work() -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        from rich.table import Table

        from sbomgen.verify.rebuild import rebuild, summary

        err = make_console(stderr=True)
        console = make_console()
        show_progress = err.is_terminal and json_path != "-"
        if show_progress:
            columns = (TextColumn("Rebuilding {task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns, console=err, transient=True) as bar:
                task = bar.add_task("", total=None)
                results = rebuild(target, recursive=recursive, keep_check=keep_check,
                                  progress=lambda done, total, name: bar.update(task, completed=done, total=total, description=printable(name)))
        else:
            results = rebuild(target, recursive=recursive, keep_check=keep_check)
        totals = summary(results)
        if json_path:
            report = {"schema": "https://sbomgen.dev/schemas/rebuild-report/v1", "target": target, "summary": totals,
                      "derivations": [r.as_json(max_differences) for r in results]}
            write_atomic(json_path, json.dumps(report, indent=2) + "\n")
        if json_path != "-":
            for result in results:
                colour = {"reproducible": "green", "differs": "red", "failed": "red"}.get(result.status, "yellow")
                note = f": {escape(result.message)}" if result.message and result.status != "differs" else ""
                console.print(f"[{colour}]{result.status.upper()}[/{colour}] {escape(result.name)}{note}")
                for comparison in result.comparisons:
                    print_comparison(comparison, max_differences, console)
            if recursive:
                table = Table(title="Rebuild summary")
                for column in ("derivations", "reproducible", "differs", "failed", "not built", "skipped", "reproducible %"):
                    table.add_column(column, justify="right")
                percent = totals["reproducible_percent"]
                table.add_row(*(str(totals[k]) for k in ("derivations", "reproducible", "differs", "failed", "not-built", "skipped")),
                              "-" if percent is None else f"{percent:.1f}")
                console.print(table)
        if totals["differs"] or totals["failed"]:
            raise typer.Exit(1)

    run_guarded(work, error_code=2)


def register(app: typer.Typer) -> None:
    app.command("diff", help=DIFF_HELP + BOUNDARY_CODES)(command(limits=True)(diff_command))
    app.command("rebuild", help=REBUILD_HELP + BOUNDARY_CODES)(command()(rebuild_command))
