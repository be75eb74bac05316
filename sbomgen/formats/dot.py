"""Dependency graphs as Graphviz documents (DOT source, or SVG/PNG through the dot tool).

Nodes are labelled name and version and coloured by kind (application, library, source
fetch, image); runtime edges are solid, build-time edges dashed. ``highlight`` marks every
component whose name matches and every path from the root to it ("why is openssl in my image?").
Large graphs are cut to ``max_nodes``, nearest to the root first, and the cut is reported.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

import graphviz

from sbomgen.errors import OutputFormatError
from sbomgen.graph.model import DependencyGraph, GraphKind, Role

FORMATS = ("dot", "svg", "png")
_COLOURS = {Role.APPLICATION: "#8fd694", Role.LIBRARY: "#a7c7e7", Role.SOURCE: "#f6c177"}
_IMAGE = "#c3a6e0"
_HIGHLIGHT = "#d7263d"


@dataclass(slots=True)
class Rendered:
    graph: graphviz.Digraph
    shown: int
    total: int

    @property
    def cut(self) -> int:
        return self.total - self.shown


def matching(graph: DependencyGraph, name: str) -> set[str]:
    """Components whose name is ``name`` (or whose store path name contains it)."""
    return {p for p, c in graph.components.items() if c.name == name or (name in p.rsplit("/", 1)[-1] and "/" in p)}


def on_paths_to(graph: DependencyGraph, targets: set[str]) -> tuple[set[str], set[tuple[str, str]]]:
    """Every node and edge on some path from the root to one of ``targets``."""
    reverse: dict[str, list[str]] = {p: [] for p in graph.components}
    for src, deps in graph.edges.items():
        for dep in deps:
            if dep in reverse:
                reverse[dep].append(src)
    nodes, edges = set(targets), set()
    queue = deque(targets)
    while queue:
        node = queue.popleft()
        for parent in reverse.get(node, ()):
            edges.add((parent, node))
            if parent not in nodes:
                nodes.add(parent)
                queue.append(parent)
    return nodes, edges


#: characters that must not reach a DOT document raw: controls (a newline would end the
#: escString line, others break Graphviz's parser or the terminal that prints the source)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _text(value: object) -> str:
    """A string from an input (a name, version, path, tag) as literal DOT escString text:
    backslashes doubled (so a trailing ``\\`` cannot swallow the closing quote and ``\\N``
    means nothing), controls shown as ``\\xNN``; quotes are escaped by the graphviz library."""
    text = str(value).replace("\\", "\\\\")
    return _CONTROL.sub(lambda m: f"\\\\x{ord(m.group()):02x}", text)


def _label(*lines: str) -> str:
    """Lines of literal text joined by DOT's centred line break, never an HTML-like label."""
    return graphviz.nohtml("\\n".join(_text(line) for line in lines))


def build_dot(graph: DependencyGraph, highlight: str | None = None, max_nodes: int | None = None) -> Rendered:
    order = _bfs_order(graph)
    keep = order if max_nodes is None else order[:max_nodes]
    kept = set(keep)
    marked_nodes: set[str] = set()
    marked_edges: set[tuple[str, str]] = set()
    if highlight:
        marked_nodes, marked_edges = on_paths_to(graph, matching(graph, highlight))
    dot = graphviz.Digraph(name="sbomgen", graph_attr={"rankdir": "LR", "fontname": "Helvetica", "label": _label(_title(graph)), "labelloc": "t"},
                           node_attr={"shape": "box", "style": "rounded,filled", "fontname": "Helvetica", "fontsize": "10"},
                           edge_attr={"color": "#555555"})
    ids = {path: f"n{index}" for index, path in enumerate(keep)}
    for path in keep:
        component = graph.components[path]
        role = graph.role(component)
        colour = _IMAGE if graph.kind is GraphKind.IMAGE and role is Role.APPLICATION else _COLOURS[role]
        lines = [component.name]
        if component.version:
            lines.append(component.version)
        if component.output and component.output != "out":
            lines.append(f"({component.output})")
        label = _label(*lines)
        attrs = {"fillcolor": colour, "tooltip": _label(path)}
        if path in marked_nodes:
            attrs |= {"color": _HIGHLIGHT, "penwidth": "3"}
        dot.node(ids[path], label, **attrs)
    style = "dashed" if graph.kind is GraphKind.BUILDTIME else "solid"
    for path in keep:
        for dep in graph.dependencies(path):
            if dep in kept:
                attrs = {"style": style}
                if (path, dep) in marked_edges:
                    attrs |= {"color": _HIGHLIGHT, "penwidth": "2.5"}
                dot.edge(ids[path], ids[dep], **attrs)
    return Rendered(dot, len(keep), len(order))


def _bfs_order(graph: DependencyGraph) -> list[str]:
    order, seen = [graph.root], {graph.root}
    queue = deque([graph.root])
    while queue:
        node = queue.popleft()
        for dep in sorted(graph.dependencies(node), key=lambda p: (graph.components[p].name, p)):
            if dep not in seen and dep in graph.components:
                seen.add(dep)
                order.append(dep)
                queue.append(dep)
    order += sorted(set(graph.components) - seen)
    return order


def _title(graph: DependencyGraph) -> str:
    root = graph.root_component
    depth = "" if graph.depth is None else f", depth {graph.depth}"
    return f"{root.name} {root.version} ({graph.kind.value}{depth})".replace("  ", " ")


def render(rendered: Rendered, fmt: str) -> bytes:
    if fmt not in FORMATS:
        raise OutputFormatError(f"unknown graph format {fmt!r} (choose from: {', '.join(FORMATS)})")
    if fmt == "dot":
        return rendered.graph.source.encode()
    try:
        return rendered.graph.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise OutputFormatError("rendering SVG/PNG needs Graphviz's dot (apt-get install graphviz); .dot works without it") from None
    except graphviz.CalledProcessError as exc:
        raise OutputFormatError(f"graphviz dot failed: {exc}") from None


def chains(graph: DependencyGraph, targets: set[str], limit: int = 20) -> tuple[list[list[str]], int]:
    """Dependency chains from the root to ``targets``, shortest first (at most ``limit``), and how many there are."""
    nodes, _edges = on_paths_to(graph, targets)
    memo: dict[str, int] = {}

    def count(node: str) -> int:  # number of paths from node to a target, over the DAG
        if node in memo:
            return memo[node]
        total = 1 if node in targets else 0
        total += sum(count(dep) for dep in graph.dependencies(node) if dep in nodes)
        memo[node] = total
        return total

    found: list[list[str]] = []
    queue = deque([[graph.root]])
    while queue and len(found) < limit and len(queue) < 200_000:  # bounded on dense graphs
        path = queue.popleft()
        node = path[-1]
        if node in targets:
            found.append(path)
        for dep in sorted(graph.dependencies(node), key=lambda p: (graph.components[p].name, p)):
            if dep in nodes and dep not in path:
                queue.append([*path, dep])
    return found, count(graph.root) if graph.root in nodes else 0
