"""Package URLs and CPEs for components.

purl: ``pkg:nix/NAME@VERSION``, the form sbomnix and Nix-aware scanners use, with the
qualifier ``output=NAME`` for outputs other than ``out`` so that ``glibc`` and its ``dev``
output do not share one identifier.  CPEs are only emitted where nixpkgs metadata derives
them (``meta.identifiers``); sbomgen never guesses a vendor.
"""

from __future__ import annotations

import re

from packageurl import PackageURL

from sbomgen.graph.model import Component

#: what the CPE 2.3 formatted-string binding quotes with a backslash (NISTIR 7695, 6.2.2:
#: ``punc``, the escape itself, and ``*``/``?`` where they are literal); letters, digits,
#: ``_``, ``-`` and ``.`` stand as they are
_CPE_QUOTED = "\\*?!\"#$%&'()+,/:;<=>@[]^`{|}~"
_CPE_ESCAPE = str.maketrans({c: "\\" + c for c in _CPE_QUOTED})
_CPE_PLAIN = re.compile(r"[A-Za-z0-9._\-]")
_CPE_VALUE = r"(?:\*|-|[*?]*(?:[A-Za-z0-9._\-]|\\[\\*?!\"#$%&'()+,/:;<=>@\[\]^`{|}~])+[*?]*)"
_CPE23 = re.compile(r"cpe:2\.3:[aoh*\-]" + (":" + _CPE_VALUE) * 10)
#: the parts of a CPE 2.3 name after ``cpe:2.3:``, in order (NISTIR 7695, 6.2)
CPE_PARTS = ("part", "vendor", "product", "version", "update", "edition", "language", "sw_edition", "target_sw", "target_hw", "other")


#: characters packageurl-python leaves as they are in a nix purl's name, version and
#: qualifier value (found by trying every printable ASCII character; a test keeps it so)
_PURL_PLAIN = re.compile(r"[A-Za-z0-9._~:-]*")


def purl_for(component: Component) -> str:
    """``pkg:nix/NAME@VERSION[?output=OUT]`` exactly as packageurl-python writes it.

    Strings made only of characters packageurl never encodes are joined directly (30 µs per
    component saved: 1 s for a 40,000-path build closure); anything else goes through it.
    """
    name, version = component.name, component.version
    output = component.output if component.output and component.output != "out" else ""
    plain = _PURL_PLAIN.fullmatch
    if name and plain(name) and plain(version) and plain(output):
        return f"pkg:nix/{name}{'@' + version if version else ''}{'?output=' + output if output else ''}"
    return PackageURL(
        type="nix", name=name, version=version or None, qualifiers={"output": output} if output else None
    ).to_string()


def assign_purl(component: Component) -> None:
    component.purl = purl_for(component)


def is_cpe23(text: str) -> bool:
    """Whether ``text`` is a well-formed CPE 2.3 formatted string (NISTIR 7695, 6.2)."""
    return isinstance(text, str) and len(text) <= 2048 and _CPE23.fullmatch(text) is not None


def cpe_value(value: str | None) -> str | None:
    """One attribute of a CPE 2.3 formatted string: ``*`` (ANY) for a missing value or
    ``*`` itself, ``-`` (NA) for ``-``; otherwise the value in lower case with exactly the
    characters the binding quotes quoted; a space is ``_``, as the CPE dictionary writes it.
    None when the value cannot be bound (other white space, control or non-ASCII characters:
    a CPE name has no way to write them)."""
    if value is None or value == "" or value == "*":
        return "*"
    if value == "-":
        return "-"
    value = value.replace(" ", "_")
    if any(not (33 <= ord(ch) < 127) for ch in value):
        return None
    return value.lower().translate(_CPE_ESCAPE)


def cpe23_from_parts(parts: dict[str, str | None]) -> str | None:
    """The CPE 2.3 formatted string of nixpkgs ``meta.identifiers.cpeParts`` (``part``,
    ``vendor``, ``product``, ``version``, ``update``, ``edition``, ``language``,
    ``sw_edition``, ``target_sw``, ``target_hw``, ``other``), every part used; None unless
    there is a vendor and a product and every part can be bound."""
    part = parts.get("part") or "a"
    if part not in ("a", "o", "h") or not parts.get("vendor") or not parts.get("product"):
        return None
    values = [cpe_value(parts.get(key)) for key in CPE_PARTS[1:]]
    if any(value is None for value in values):
        return None
    text = f"cpe:2.3:{part}:" + ":".join(values)  # type: ignore[arg-type]
    return text if is_cpe23(text) else None


def cpe23(vendor: str, product: str, version: str | None, update: str | None = None) -> str | None:
    """A CPE 2.3 formatted string of an application (see :func:`cpe23_from_parts`)."""
    return cpe23_from_parts({"vendor": vendor, "product": product, "version": version, "update": update})
