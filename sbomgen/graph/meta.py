"""Merge nixpkgs metadata (``nix-env -qa --meta --json``) into the components of a graph.

The file maps attribute paths to entries with ``name``, ``pname``, ``version`` and ``meta``
(``description``, ``homepage``, ``license``, ``maintainers``, ``identifiers``).  A component
takes the entry whose ``name`` equals its derivation name (``sqlite-3.46.0``); failing that,
the only entry with its ``pname`` (noted as ``matched_by = "pname"``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sbomgen.errors import MetadataError
from sbomgen.fsutil import load_json
from sbomgen.graph.identifiers import cpe23
from sbomgen.graph.licensing import canonical_id, spdx_licensing  # noqa: F401 - spdx_licensing for older imports
from sbomgen.graph.model import Component, DependencyGraph, License, Meta


def _known_spdx_id(value: Any) -> str | None:
    """The canonical SPDX id for ``value`` when SPDX lists it as a licence (case-insensitively,
    deprecated ids mapped: :mod:`sbomgen.graph.licensing`)."""
    return canonical_id(value) if isinstance(value, str) else None


def _license(raw: Any) -> License | None:
    if isinstance(raw, str):
        spdx = _known_spdx_id(raw)
        return License(spdx_id=spdx, name=raw)
    if not isinstance(raw, dict):
        return None
    spdx = raw.get("spdxId")
    if spdx and not _known_spdx_id(spdx):
        spdx = None
    name = raw.get("fullName") or raw.get("shortName") or spdx or "unknown"
    return License(spdx_id=_known_spdx_id(spdx) if spdx else None, name=name, url=raw.get("url"), free=raw.get("free"))


def _licenses(raw: Any) -> tuple[License, ...]:
    items = raw if isinstance(raw, list) else [raw] if raw is not None else []
    return tuple(lic for lic in (_license(item) for item in items) if lic is not None)


def _homepage(raw: Any) -> str | None:
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    return raw if isinstance(raw, str) and raw else None


def _maintainers(raw: Any) -> tuple[str, ...]:
    result = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict):
            name = next((v for v in (item.get("name"), item.get("github")) if isinstance(v, str) and v), "")
            email = item.get("email") if isinstance(item.get("email"), str) else None
            if name:
                result.append(f"{name} <{email}>" if email else name)
        elif isinstance(item, str):
            result.append(item)
    return tuple(result)


def _cpe(entry: dict[str, Any], meta: dict[str, Any]) -> str | None:
    identifiers = meta.get("identifiers")
    if not isinstance(identifiers, dict):
        return None
    cpe = identifiers.get("cpe")
    if isinstance(cpe, str) and cpe.startswith("cpe:2.3:"):
        return cpe
    parts = identifiers.get("cpeParts")
    if not isinstance(parts, dict):
        return None

    def text(value: Any) -> str | None:  # a file from elsewhere may hold anything here
        return value if isinstance(value, str) and value else None

    vendor, product = text(parts.get("vendor")), text(parts.get("product"))
    if vendor and product:
        return cpe23(vendor, product, text(parts.get("version")) or text(entry.get("version")), text(parts.get("update")))
    return None


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str
    pname: str | None
    meta: Meta


class MetaIndex:
    """Metadata entries indexed by derivation name and by pname."""

    def __init__(self, entries: list[_Entry]):
        self.by_name: dict[str, _Entry] = {}
        self.by_pname: dict[str, list[_Entry]] = defaultdict(list)
        for entry in entries:
            self.by_name.setdefault(entry.name, entry)
            if entry.pname:
                self.by_pname[entry.pname].append(entry)

    def __len__(self) -> int:
        return len(self.by_name)

    def lookup(self, drv_name: str | None, pname: str) -> Meta | None:
        if drv_name and drv_name in self.by_name:
            found = self.by_name[drv_name].meta
            return Meta(**{**_as_dict(found), "matched_by": "name"})
        candidates = {id(e): e for e in self.by_pname.get(pname, [])}
        if len(candidates) == 1:
            found = next(iter(candidates.values())).meta
            return Meta(**{**_as_dict(found), "matched_by": "pname"})
        return None


def _as_dict(meta: Meta) -> dict[str, Any]:
    return {slot: getattr(meta, slot) for slot in Meta.__slots__}


def load_meta(path: str | Path) -> MetaIndex:
    """Read a ``nix-env -qa --meta --json`` file; :class:`MetadataError` when it is not one."""
    data = load_json(str(path), MetadataError, "metadata file")
    if not isinstance(data, dict):
        raise MetadataError(
            f"metadata file {path} is not in the `nix-env -qa --meta --json` shape (expected an object of attribute paths)"
        )
    entries = []
    for attr, value in data.items():
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            raise MetadataError(f"metadata file {path}: entry {attr!r} has no \"name\" string")
        meta = value.get("meta") or {}
        if not isinstance(meta, dict):
            raise MetadataError(f"metadata file {path}: entry {attr!r} has a \"meta\" that is not an object")
        entries.append(
            _Entry(
                name=value["name"],
                pname=value.get("pname") if isinstance(value.get("pname"), str) else None,
                meta=Meta(
                    attr_path=attr,
                    description=meta.get("description") if isinstance(meta.get("description"), str) else None,
                    homepage=_homepage(meta.get("homepage")),
                    licenses=_licenses(meta.get("license")),
                    cpe=_cpe(value, meta),
                    maintainers=_maintainers(meta.get("maintainers")),
                ),
            )
        )
    return MetaIndex(entries)


def _drv_name(component: Component) -> str | None:
    if component.drv_path:
        base = component.drv_path.rsplit("/", 1)[-1]
        return base[33:-4] if base.endswith(".drv") else None
    return None


def apply_meta(graph: DependencyGraph, index: MetaIndex) -> int:
    """Attach metadata to the components it matches; returns how many matched."""
    matched = 0
    for component in graph.components.values():
        if component.is_source:
            continue
        meta = index.lookup(_drv_name(component), component.name)
        if meta is not None:
            component.meta = meta
            matched += 1
    return matched
