"""What every document shares: who made it, when, and its unique id.

``SOURCE_DATE_EPOCH`` pins the creation time *and* makes the document id a name-based UUID
derived from that time and the graph, so the same store and options give byte-identical
documents.  Without it the time is now and the id is random, as SPDX and CycloneDX expect.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from sbomgen import __version__
from sbomgen.errors import UsageError
from sbomgen.graph.model import DependencyGraph

TOOL_NAME = "sbomgen"
TOOL_VENDOR = "sbomgen"
_NAMESPACE = uuid.UUID("6f0b8d4e-3c55-5b0e-9d43-6e0a2a5c9b11")


@dataclass(frozen=True, slots=True)
class DocumentContext:
    created: datetime
    document_uuid: uuid.UUID
    reproducible: bool
    tool_version: str = __version__

    @classmethod
    def for_graph(cls, graph: DependencyGraph, now: datetime | None = None, epoch: int | None = None) -> DocumentContext:
        """``epoch`` (e.g. an image's pinned creation time) wins over ``SOURCE_DATE_EPOCH``."""
        epoch = str(epoch) if epoch is not None else os.environ.get("SOURCE_DATE_EPOCH")
        if epoch:
            try:
                created = datetime.fromtimestamp(int(epoch), tz=timezone.utc)
            except (ValueError, OverflowError, OSError):
                raise UsageError(f"SOURCE_DATE_EPOCH must be whole seconds since 1970, got {epoch!r}") from None
            seed = "|".join([graph.root_component.ref, graph.kind.value, str(graph.depth), epoch, *sorted(c.ref for c in graph.components.values())])
            return cls(created, uuid.uuid5(_NAMESPACE, seed), True)
        created = (now or datetime.now(timezone.utc)).replace(microsecond=0)
        return cls(created, uuid.uuid4(), False)

    @property
    def tool(self) -> str:
        return f"{TOOL_NAME}-{self.tool_version}"


@dataclass(frozen=True, slots=True)
class Completeness:
    """How complete the dependencies a document lists are, per component.

    Without ``--depth`` every component's dependencies were walked: the graph is complete.
    With ``--depth N`` the components at depth N were not walked further.  When the graph
    knows which of them really had dependencies left out (``DependencyGraph.cut_off``, store
    paths), those are ``cut`` and every other component is complete; a graph that does not know
    leaves all of them ``unwalked``: their dependencies may or may not be complete.
    """

    depth: int | None
    cut: frozenset[str] = frozenset()
    unwalked: frozenset[str] = frozenset()

    @property
    def complete(self) -> bool:
        return not (self.cut or self.unwalked)

    def state(self, store_path: str) -> str:
        """``complete``, ``incomplete`` (dependencies cut off) or ``unknown`` (not walked)."""
        if store_path in self.cut:
            return "incomplete"
        if store_path in self.unwalked:
            return "unknown"
        return "complete"


def completeness(graph: DependencyGraph) -> Completeness:
    """Which components' dependencies the depth limit cut off (see :class:`Completeness`)."""
    if graph.depth is None:
        return Completeness(None)
    cut = graph.cut_off
    if cut is not None:
        return Completeness(graph.depth, cut=frozenset(p for p in cut if p in graph.components))
    frontier = frozenset(p for p, c in graph.components.items() if c.depth >= graph.depth)
    return Completeness(graph.depth, unwalked=frontier)


def document_name(graph: DependencyGraph) -> str:
    root = graph.root_component
    label = f"{root.name}-{root.version}" if root.version else root.name
    return f"{label} ({graph.kind.value} closure{'' if graph.depth is None else f', depth {graph.depth}'})"
