"""Package URLs and CPEs for components.

purl: ``pkg:nix/NAME@VERSION``, the form sbomnix and Nix-aware scanners use, with the
qualifier ``output=NAME`` for outputs other than ``out`` so that ``glibc`` and its ``dev``
output do not share one identifier.  CPEs are only emitted where nixpkgs metadata derives
them (``meta.identifiers``); sbomgen never guesses a vendor.
"""

from __future__ import annotations

from packageurl import PackageURL

from sbomgen.graph.model import Component

_CPE_ESCAPE = str.maketrans({c: "\\" + c for c in "\\:*?!\"#$%&'()+,/;<=>@[]^`{|}~"})


def purl_for(component: Component) -> str:
    qualifiers = {}
    if component.output and component.output != "out":
        qualifiers["output"] = component.output
    return PackageURL(
        type="nix", name=component.name, version=component.version or None, qualifiers=qualifiers or None
    ).to_string()


def assign_purl(component: Component) -> None:
    component.purl = purl_for(component)


def cpe23(vendor: str, product: str, version: str | None, update: str | None = None) -> str:
    """A CPE 2.3 formatted string, with the special characters of each part escaped."""

    def part(value: str | None) -> str:
        if not value:
            return "*"
        return value.replace(" ", "_").lower().translate(_CPE_ESCAPE)

    return f"cpe:2.3:a:{part(vendor)}:{part(product)}:{part(version)}:{part(update)}:*:*:*:*:*:*"
