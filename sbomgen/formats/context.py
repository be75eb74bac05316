"""What every document shares: who made it, when, and its unique id.

``SOURCE_DATE_EPOCH`` pins the creation time *and* makes the document id a name-based UUID
derived from that time and the graph, so the same store and options give byte-identical
documents.  Without it the time is now and the id is random, as SPDX and CycloneDX expect.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sbomgen import __version__
from sbomgen.errors import UsageError
from sbomgen.graph.model import NIXPKGS_SUPPLIER, Component, DependencyGraph, License

TOOL_NAME = "sbomgen"
TOOL_VENDOR = "sbomgen"
_NAMESPACE = uuid.UUID("6f0b8d4e-3c55-5b0e-9d43-6e0a2a5c9b11")


_ACTOR = re.compile(r"(Organization|Person): ([^()\n\r]*[^()\s])(?: \(([^\s()@]+@[^\s()@]+)\))?")


def parse_supplier(text: str) -> str:
    """``--supplier``: an SPDX actor, ``Organization: NAME`` or ``Person: NAME``, with an
    optional ``(EMAIL)`` (SPDX 2.3 clause 7.5; the email also goes into CycloneDX, whose schema
    wants an address); :class:`UsageError` for anything else."""
    if not isinstance(text, str) or len(text) > 512 or not text.isprintable() or _ACTOR.fullmatch(text) is None:
        raise UsageError(f"--supplier must be 'Organization: NAME' or 'Person: NAME', with an optional ' (EMAIL)'; got {text[:80]!r}")
    return text


def actor_parts(actor: str) -> tuple[str, str, str | None]:
    """(``Organization``/``Person``, name, email or None) of an SPDX actor string."""
    match = _ACTOR.fullmatch(actor)
    assert match is not None
    return match.group(1), match.group(2), match.group(3) or None


@dataclass(frozen=True, slots=True)
class Supplier:
    actor: str  # SPDX actor: "Organization: NAME (EMAIL)"
    source: str  # "nixpkgs-meta" | "user"


def supplier_of(graph: DependencyGraph, component: Component, context: DocumentContext) -> Supplier | None:
    """Who supplied ``component`` (docs/sbom.md, "Suppliers"): ``--supplier`` for the user's
    own (the target, and every component no nixpkgs metadata describes), the nixpkgs default
    for the others that nixpkgs metadata describes; None when neither applies."""
    if component.store_path == graph.root and context.supplier:
        return Supplier(context.supplier, "user")
    if component.meta is not None:
        return Supplier(NIXPKGS_SUPPLIER, "nixpkgs-meta")
    if context.supplier:
        return Supplier(context.supplier, "user")
    return None


def version_of(component: Component) -> tuple[str, str]:
    """(version, where it comes from) for every component (docs/sbom.md, "Versions"): the
    version in the name (``name``), else the 32-character hash of the store path, which
    identifies exactly this build (``store-hash``)."""
    if component.version:
        return component.version, "name"
    ref = component.ref
    if len(ref) > 33 and ref[32] == "-":
        return ref[:32], "store-hash"
    return "unknown", "unknown"


def extracted_licences(components: list[Component]) -> dict[str, tuple[str, str | None, bool | None]]:
    """Every ``LicenseRef-`` the components' expressions use: ref -> (name, url, free)."""
    from sbomgen.graph.licensing import leaves, orphan_exception_ref, parse

    found: dict[str, tuple[str, str | None, bool | None]] = {}
    for component in components:
        expression = component.license_expression
        if not expression:
            continue
        used = {leaf.id for leaf in leaves(parse(expression)) if leaf.is_ref}
        for lic in component.licenses:
            if lic.exception and lic.spdx_id and orphan_exception_ref(lic.spdx_id) in used:
                ref = orphan_exception_ref(lic.spdx_id)
                name = f"{lic.name} (the licence exception {lic.spdx_id}, listed without a licence it modifies)"
            elif not lic.spdx_id and not lic.expression and lic.ref in used:
                ref, name = lic.ref, lic.name
            else:
                continue
            found.setdefault(ref, (name, lic.url, lic.free))
    return found


def licence_text_note(name: str, url: str | None, free: bool | None) -> str:
    """The ``extractedText`` of a ``LicenseRef-``: sbomgen has the name, not the text."""
    unfree = " nixpkgs marks it unfree." if free is False else ""
    return f"{name} (licence text not included; see {url or 'nixpkgs meta'}).{unfree}"


def unfree_note(licences: tuple[License, ...]) -> str | None:
    names = [lic.spdx_id or lic.ref for lic in licences if lic.free is False]
    return ", ".join(dict.fromkeys(names)) if names else None


@dataclass(frozen=True, slots=True)
class DocumentContext:
    created: datetime
    document_uuid: uuid.UUID
    reproducible: bool
    tool_version: str = __version__
    supplier: str | None = None
    """``--supplier``: the SPDX actor of the user's own components."""

    @classmethod
    def for_graph(
        cls, graph: DependencyGraph, now: datetime | None = None, epoch: int | None = None, supplier: str | None = None
    ) -> DocumentContext:
        """``epoch`` (e.g. an image's pinned creation time) wins over ``SOURCE_DATE_EPOCH``."""
        epoch = str(epoch) if epoch is not None else os.environ.get("SOURCE_DATE_EPOCH")
        if epoch:
            try:
                created = datetime.fromtimestamp(int(epoch), tz=UTC)
            except (ValueError, OverflowError, OSError):
                raise UsageError(f"SOURCE_DATE_EPOCH must be whole seconds since 1970, got {epoch!r}") from None
            seed = "|".join([graph.root_component.ref, graph.kind.value, str(graph.depth), epoch, *sorted(c.ref for c in graph.components.values())])
            return cls(created, uuid.uuid5(_NAMESPACE, seed), True, supplier=supplier)
        created = (now or datetime.now(UTC)).replace(microsecond=0)
        return cls(created, uuid.uuid4(), False, supplier=supplier)

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
