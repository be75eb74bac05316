"""``sbomgen graph`` and ``sbomgen why``: pictures and explanations of a dependency graph."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from sbomgen.cli.common import command, echo, run_guarded
from sbomgen.cli.targets import TargetCommand, resolve, shift_name, target_options

GRAPH_HELP = """Draw the dependency graph (SVG, PNG or DOT, by the output's extension).

Nodes are coloured by kind (application, library, source fetch, image); runtime edges solid,
build-time edges dashed. --highlight NAME marks a package and every path from the root to it.
"""

WHY_HELP = """Why is NAME in the closure? Print the dependency chains from the target to it, shortest first.

Exit 0 when NAME is in the closure, 1 when it is not (70 is a bug, never "not found").
"""


def graph_command(
    target: Annotated[str | None, typer.Argument(metavar="TARGET", help="./result, a store path, a .drv, an image, FILE.nix or PATH#ATTR (or -f FILE.nix -A ATTR).", show_default=False)] = None,
    output: Annotated[str, typer.Option("--output", "-o", metavar="FILE", help="FILE.svg, FILE.png or FILE.dot (- for DOT on stdout).")] = "graph.svg",
    depth: Annotated[int | None, typer.Option("--depth", min=0, metavar="N", help="Only what is at most N steps from the target.")] = None,
    buildtime: Annotated[bool, typer.Option("--buildtime", help="The build-time graph instead of the runtime one.")] = False,
    highlight: Annotated[str | None, typer.Option("--highlight", metavar="NAME", help="Mark NAME and its paths to the root.")] = None,
    max_nodes: Annotated[int | None, typer.Option("--max-nodes", min=1, metavar="N", help="Draw at most N nodes, nearest first.")] = None,
    db: Annotated[str | None, typer.Option("--db", metavar="FILE", help="Nix store database.")] = None,
) -> None:
    def work() -> None:
        from sbomgen.errors import OutputFormatError
        from sbomgen.formats import dot
        from sbomgen.fsutil import write_atomic_bytes
        from sbomgen.sbom import load_graph

        chosen = resolve(target)
        fmt = "dot" if output == "-" else os.path.splitext(output)[1].lstrip(".").lower()
        if fmt not in dot.FORMATS:
            raise OutputFormatError(f"cannot tell the graph format of {output!r}: use .svg, .png or .dot")
        graph = load_graph(chosen, buildtime=buildtime, depth=depth, db_path=db).graph
        if highlight and not dot.matching(graph, highlight):
            echo(f"sbomgen: note: nothing named {highlight!r} in this graph", err=True)
        drawn = dot.build_dot(graph, highlight, max_nodes)
        data = dot.render(drawn, fmt)
        write_atomic_bytes(output, data)
        if drawn.cut:
            print(f"sbomgen: note: drew {drawn.shown} of {drawn.total} nodes (the {drawn.cut} farthest from the target were cut: "
                  "raise --max-nodes or lower --depth)", file=sys.stderr)
        if output != "-":
            echo(f"wrote {output}: {drawn.shown} nodes")

    run_guarded(work)


def why_command(
    target: Annotated[str | None, typer.Argument(metavar="TARGET", help="./result, a store path, a .drv, an image, FILE.nix or PATH#ATTR (or -f FILE.nix -A ATTR).", show_default=False)] = None,
    name: Annotated[str | None, typer.Argument(metavar="NAME", help="Package name (or part of a store path name).", show_default=False)] = None,
    buildtime: Annotated[bool, typer.Option("--buildtime", help="Search the build-time graph.")] = False,
    limit: Annotated[int, typer.Option("--max-chains", min=1, metavar="N", help="Print at most N chains.")] = 20,
    db: Annotated[str | None, typer.Option("--db", metavar="FILE", help="Nix store database.")] = None,
) -> None:
    def work() -> None:
        from sbomgen.errors import UsageError
        from sbomgen.formats import dot
        from sbomgen.sbom import load_graph

        given, wanted = shift_name(target, name)
        if wanted is None:
            raise UsageError("why needs a NAME to look for (why TARGET NAME, or why -f FILE.nix -A ATTR NAME)")
        chosen = resolve(given)
        graph = load_graph(chosen, buildtime=buildtime, db_path=db).graph
        targets = dot.matching(graph, wanted)
        if not targets:
            echo(f"{wanted} is not in the {graph.kind.value} closure of {chosen}")
            raise typer.Exit(1)
        found, total = dot.chains(graph, targets, limit)

        def label(path: str) -> str:
            component = graph.components[path]
            text = f"{component.name} {component.version}".strip()
            return text + (f" ({component.output})" if component.output and component.output != "out" else "")

        echo(f"{wanted} is in the {graph.kind.value} closure of {chosen} through {total} chain(s):")
        for chain in found:
            echo("  " + " -> ".join(label(p) for p in chain))
        if total > len(found):
            echo(f"  … {total - len(found)} more (raise --max-chains)")

    run_guarded(work)


def register(app: typer.Typer) -> None:
    app.command("graph", help=GRAPH_HELP, cls=TargetCommand)(command(limits=True)(target_options(graph_command)))
    app.command("why", help=WHY_HELP, cls=TargetCommand)(command(limits=True)(target_options(why_command)))
