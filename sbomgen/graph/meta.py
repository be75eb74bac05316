"""Merge nixpkgs metadata into the components of a graph, keyed by derivation, never guessed.

Two sources, in this order:

* an evaluation of the target expression (:mod:`sbomgen.nix.evaluate`): ``meta`` of every
  derivation reachable from it, keyed by ``drvPath``; a component takes the metadata of the
  derivation that built it (its deriver), and nothing when that derivation has no ``meta``;
* a ``nix-env -qa --meta --json --out-path`` file (``--meta``): entries map attribute paths to
  ``name``, ``pname``, ``version``, ``outputs`` (output name -> store path) and ``meta``; a
  component takes the entry one of whose outputs *is* its store path.  Matching by derivation
  name (``name`` equal to ``sqlite-3.46.0`` exactly, never by ``pname``) only when asked
  (``--meta-match-names``).

Every component that got metadata says where from: ``nix:meta_source`` = ``evaluation``,
``meta-file:out-path`` or ``meta-file:name`` (also ``Meta.matched_by``).
"""

from __future__ import annotations

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
    out_paths: tuple[str, ...] = ()


#: ``nix:meta_source`` values: where a component's metadata came from
FROM_EVALUATION = "evaluation"
FROM_OUT_PATH = "meta-file:out-path"
FROM_NAME = "meta-file:name"


class MetaIndex:
    """Metadata entries of a ``nix-env -qa --meta --json --out-path`` file, indexed by output path
    (how components are matched) and by derivation name (only with ``--meta-match-names``)."""

    def __init__(self, entries: list[_Entry]):
        self.entries = entries
        self.by_out_path: dict[str, _Entry] = {}
        self.by_name: dict[str, _Entry] = {}
        for entry in entries:
            for path in entry.out_paths:
                self.by_out_path.setdefault(path, entry)
            self.by_name.setdefault(entry.name, entry)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def has_out_paths(self) -> bool:
        return bool(self.by_out_path)

    def lookup_out_path(self, store_path: str) -> Meta | None:
        entry = self.by_out_path.get(store_path)
        return _tagged(entry.meta, FROM_OUT_PATH) if entry else None

    def lookup(self, drv_name: str | None, pname: str | None = None) -> Meta | None:
        """The entry whose ``name`` is exactly the derivation name (``sqlite-3.46.0``).  Never a
        guess by ``pname``: ``glibc-2.40.tar.xz`` (a fetch) and ``weather-0.0.1-go-modules`` (a
        derived tree) have pnames of packages they are not.  ``pname`` is accepted and ignored."""
        entry = self.by_name.get(drv_name) if drv_name else None
        return _tagged(entry.meta, FROM_NAME) if entry else None


def _tagged(meta: Meta, source: str) -> Meta:
    return Meta(**{**_as_dict(meta), "matched_by": source})


def _as_dict(meta: Meta) -> dict[str, Any]:
    return {slot: getattr(meta, slot) for slot in Meta.__slots__}


def meta_from_entry(attr: str | None, value: dict[str, Any]) -> Meta:
    """A :class:`Meta` from one entry in ``nix-env``'s shape (``name``, ``version``, ``meta``)."""
    meta = value.get("meta") or {}
    return Meta(
        attr_path=attr,
        description=meta.get("description") if isinstance(meta.get("description"), str) else None,
        homepage=_homepage(meta.get("homepage")),
        licenses=_licenses(meta.get("license")),
        cpe=_cpe(value, meta),
        maintainers=_maintainers(meta.get("maintainers")),
    )


def _out_paths(value: dict[str, Any]) -> tuple[str, ...]:
    """``outputs`` (``{"out": "/nix/store/…"}``, null without ``--out-path``) and ``outPath``."""
    paths = []
    outputs = value.get("outputs")
    if isinstance(outputs, dict):
        paths += [p for p in outputs.values() if isinstance(p, str) and p]
    if isinstance(value.get("outPath"), str) and value["outPath"]:
        paths.append(value["outPath"])
    return tuple(dict.fromkeys(paths))


def load_meta(path: str | Path) -> MetaIndex:
    """Read a ``nix-env -qa --meta --json [--out-path]`` file; :class:`MetadataError` when it is not one."""
    data = load_json(str(path), MetadataError, "metadata file")
    if not isinstance(data, dict):
        raise MetadataError(
            f"metadata file {path} is not in the `nix-env -qa --meta --json` shape (expected an object of attribute paths)"
        )
    entries = []
    for attr, value in data.items():
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            raise MetadataError(f"metadata file {path}: entry {attr!r} has no \"name\" string")
        if not isinstance(value.get("meta") or {}, dict):
            raise MetadataError(f"metadata file {path}: entry {attr!r} has a \"meta\" that is not an object")
        entries.append(
            _Entry(
                name=value["name"],
                pname=value.get("pname") if isinstance(value.get("pname"), str) else None,
                meta=meta_from_entry(attr, value),
                out_paths=_out_paths(value),
            )
        )
    return MetaIndex(entries)


def _drv_name(component: Component) -> str | None:
    if component.drv_path:
        base = component.drv_path.rsplit("/", 1)[-1]
        return base[33:-4] if base.endswith(".drv") else None
    return None


def _attach(component: Component, meta: Meta) -> None:
    component.meta = meta
    if meta.matched_by:
        component.extra["nix:meta_source"] = meta.matched_by


def apply_meta(graph: DependencyGraph, index: MetaIndex, match_names: bool = False) -> int:
    """Attach a metadata file's entries to the components whose store path is one of the entry's
    outputs (``--out-path``); with ``match_names``, also to components whose derivation name is
    an entry's ``name`` exactly.  Components that already have metadata (from an evaluation)
    keep it.  Returns how many matched."""
    matched = 0
    for component in graph.components.values():
        if component.is_source or component.meta is not None:
            continue
        meta = index.lookup_out_path(component.store_path)
        if meta is None and match_names:
            meta = index.lookup(_drv_name(component))
        if meta is not None:
            _attach(component, meta)
            matched += 1
    return matched


def evaluated_meta(packages: dict[str, dict[str, Any]]) -> dict[str, tuple[Meta | None, str | None]]:
    """drvPath -> (its metadata, or None when the derivation has no ``meta``; its ``version``),
    from an evaluation (:func:`sbomgen.nix.evaluate.evaluate`)."""
    result: dict[str, tuple[Meta | None, str | None]] = {}
    for drv_path, record in packages.items():
        meta = record.get("meta")
        entry = {"name": record.get("name"), "version": record.get("version"), "meta": meta}
        found = _tagged(meta_from_entry(record.get("attrPath"), entry), FROM_EVALUATION) if isinstance(meta, dict) else None
        result[drv_path] = (found, record.get("version"))
    return result


def apply_evaluated_meta(graph: DependencyGraph, packages: dict[str, dict[str, Any]]) -> int:
    """Attach evaluated metadata to the components built by each derivation (every output of
    it: ``glibc`` ``out``, ``dev`` and ``bin``), matched by ``drvPath`` only.  A derivation
    without ``meta`` gives its components none.  A component without a version takes the
    derivation's ``version`` attribute.  Returns how many components got metadata."""
    by_drv = evaluated_meta(packages)
    matched = 0
    for component in graph.components.values():
        found = by_drv.get(component.drv_path) if component.drv_path else None
        if found is None:
            continue
        meta, version = found
        if not component.version and version:
            component.version = version
            component.extra["nix:version_source"] = FROM_EVALUATION
        if meta is not None:
            _attach(component, meta)
            matched += 1
    return matched
