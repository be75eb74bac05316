"""CycloneDX XML as the JSON it would be, for the fields ``sbomgen check`` and the NTIA count
read: components (nested ones too), their hashes, licences, supplier, purl, CPE, references and
properties; the metadata's component, authors, tools and timestamp; the dependencies.

The tree comes from :func:`sbomgen.gate.documents.parse_xml` (no DTDs, entities, XInclude or
network); elements are matched by local name within the document's own namespace.
"""

from __future__ import annotations

from typing import Any


def _local(element) -> str:
    tag = element.tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _children(element, name: str) -> list:
    return [child for child in element if _local(child) == name]


def _child(element, name: str):
    found = _children(element, name)
    return found[0] if found else None


def _text(element, name: str) -> str | None:
    child = _child(element, name) if element is not None else None
    return (child.text or "").strip() if child is not None else None


def _component(element) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("name", "version", "purl", "cpe"):
        value = _text(element, key)
        if value is not None:
            out[key] = value
    if element.get("bom-ref") is not None:
        out["bom-ref"] = element.get("bom-ref")
    supplier = _child(element, "supplier")
    if supplier is not None:
        out["supplier"] = {"name": _text(supplier, "name") or ""}
    hashes = _child(element, "hashes")
    if hashes is not None:
        out["hashes"] = [{"alg": h.get("alg", ""), "content": (h.text or "").strip()} for h in _children(hashes, "hash")]
    licenses = _child(element, "licenses")
    if licenses is not None:
        entries = []
        for entry in licenses:
            if _local(entry) == "expression":
                entries.append({"expression": (entry.text or "").strip()})
            elif _local(entry) == "license":
                lic = {key: _text(entry, key) for key in ("id", "name") if _text(entry, key) is not None}
                entries.append({"license": lic})
        out["licenses"] = entries
    references = _child(element, "externalReferences")
    if references is not None:
        out["externalReferences"] = [{"type": r.get("type", ""), "url": _text(r, "url") or ""} for r in _children(references, "reference")]
    properties = _child(element, "properties")
    if properties is not None:
        out["properties"] = [{"name": p.get("name", ""), "value": (p.text or "").strip()} for p in _children(properties, "property")]
    nested = _child(element, "components")
    if nested is not None:
        out["components"] = [_component(c) for c in _children(nested, "component")]
    return out


def cyclonedx_xml_data(document) -> dict[str, Any]:
    """The JSON form of a CycloneDX XML document (the parts sbomgen reads)."""
    root = document.xml.getroot()
    data: dict[str, Any] = {"bomFormat": "CycloneDX", "specVersion": document.version}
    metadata = _child(root, "metadata")
    if metadata is not None:
        meta: dict[str, Any] = {}
        if _text(metadata, "timestamp") is not None:
            meta["timestamp"] = _text(metadata, "timestamp")
        component = _child(metadata, "component")
        if component is not None:
            meta["component"] = _component(component)
        authors = _child(metadata, "authors")
        if authors is not None:
            meta["authors"] = [{"name": _text(a, "name") or ""} for a in _children(authors, "author")]
        tools = _child(metadata, "tools")
        if tools is not None:
            listed = [{"name": _text(t, "name") or ""} for t in _children(tools, "tool")]
            components = _child(tools, "components")
            if components is not None:
                listed += [{"name": _text(c, "name") or ""} for c in _children(components, "component")]
            meta["tools"] = listed
        data["metadata"] = meta
    components = _child(root, "components")
    if components is not None:
        data["components"] = [_component(c) for c in _children(components, "component")]
    dependencies = _child(root, "dependencies")
    if dependencies is not None:
        data["dependencies"] = [
            {"ref": d.get("ref", ""), "dependsOn": [c.get("ref", "") for c in _children(d, "dependency")]}
            for d in _children(dependencies, "dependency")
        ]
    return data
