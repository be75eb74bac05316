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
from sbomgen.graph.identifiers import cpe23_from_parts, is_cpe23
from sbomgen.graph.licensing import LicenceExpressionError, canonical_id, exception_id, spdx_licensing  # noqa: F401 - spdx_licensing for older imports
from sbomgen.graph.licensing import normalize as normalize_expression
from sbomgen.graph.model import Component, DependencyGraph, License, Maintainer, Meta


def _known_spdx_id(value: Any) -> str | None:
    """The canonical SPDX id for ``value`` when SPDX lists it as a licence (case-insensitively,
    deprecated ids mapped: :mod:`sbomgen.graph.licensing`)."""
    return canonical_id(value) if isinstance(value, str) else None


def _text(value: Any, limit: int = 4096) -> str | None:
    """A non-empty string from a file from elsewhere (which may hold anything), else None."""
    return value[:limit] if isinstance(value, str) and value.strip() else None


def _license_word(word: str) -> License:
    """One licence named by a string: an SPDX licence id, an SPDX exception, or a name."""
    spdx = _known_spdx_id(word)
    if spdx:
        return License(spdx_id=spdx, name=word)
    exception = exception_id(word)
    if exception:
        return License(spdx_id=exception, name=word, exception=True)
    return License(spdx_id=None, name=word)


def _license_string(raw: str) -> list[License]:
    """nixpkgs accepts a string too: an SPDX expression, or short names/ids separated by
    spaces (nixpkgs manual, ``meta.license``)."""
    words = raw.split()
    if len(words) > 1 and any(w.upper() in ("AND", "OR", "WITH") for w in words):
        try:
            return [License(spdx_id=None, name=raw, expression=normalize_expression(raw))]
        except LicenceExpressionError:
            pass
    return [_license_word(word) for word in words[:64]]


def _license(raw: Any) -> License | None:
    if not isinstance(raw, dict):
        return None
    spdx = _text(raw.get("spdxId"), 128)
    short = _text(raw.get("shortName"), 128)
    name = _text(raw.get("fullName")) or short or spdx or "unknown"
    url = _text(raw.get("url"))
    free = raw.get("free") if isinstance(raw.get("free"), bool) else None
    licence_id = _known_spdx_id(spdx) if spdx else None
    if licence_id:
        return License(spdx_id=licence_id, name=name, url=url, free=free)
    exception = exception_id(spdx) or exception_id(short)
    if exception:
        return License(spdx_id=exception, name=name, url=url, free=free, exception=True)
    return License(spdx_id=None, name=name, url=url, free=free)


def _licenses(raw: Any) -> tuple[License, ...]:
    items = raw if isinstance(raw, list) else [raw] if raw is not None else []
    result: list[License] = []
    for item in items[:256]:
        if isinstance(item, str):
            result.extend(_license_string(item[:4096]))
        else:
            lic = _license(item)
            if lic is not None:
                result.append(lic)
    return tuple(result)


def _homepage(raw: Any) -> str | None:
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    return raw if isinstance(raw, str) and raw else None


def _maintainers(raw: Any) -> tuple[Maintainer, ...]:
    result = []
    for item in (raw if isinstance(raw, list) else [])[:256]:
        if isinstance(item, dict):
            github = _text(item.get("github"), 256)
            name = _text(item.get("name"), 256) or github
            if name:
                result.append(Maintainer(name=name, email=_text(item.get("email"), 256), github=github))
        elif isinstance(item, str) and item.strip():
            result.append(Maintainer(name=item[:256]))
    return tuple(result)


#: the parts of a CPE 2.3 name after ``cpe:2.3:``, in order (NISTIR 7695, 6.2)
CPE_PARTS = ("part", "vendor", "product", "version", "update", "edition", "language", "sw_edition", "target_sw", "target_hw", "other")


def _cpe(entry: dict[str, Any], meta: dict[str, Any]) -> str | None:
    """``meta.identifiers.cpe`` when it is a well-formed CPE 2.3 formatted string, else one
    bound from every part of ``meta.identifiers.cpeParts`` (:func:`cpe23_from_parts`)."""
    identifiers = meta.get("identifiers")
    if not isinstance(identifiers, dict):
        return None
    cpe = identifiers.get("cpe")
    if isinstance(cpe, str) and is_cpe23(cpe):
        return cpe
    parts = identifiers.get("cpeParts")
    if not isinstance(parts, dict):
        return None
    values = {key: _text(parts.get(key), 256) for key in CPE_PARTS}
    if not values["version"]:
        values["version"] = _text(entry.get("version"), 256)
    return cpe23_from_parts(values)


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
