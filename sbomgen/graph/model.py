"""The model every document is made from: components and the graph between them.

A component is one store path: one *output* of a derivation (``glibc`` ``out``, ``dev`` and
``bin`` are three components, each with its own digest), or a plain source added to the
store (``setup.sh``).  Components never merge outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class GraphKind(str, Enum):
    RUNTIME = "runtime"
    BUILDTIME = "buildtime"
    IMAGE = "image"  # what an OCI/docker image contains: the root is the image itself


class Role(str, Enum):
    """What a component is to the graph; documents map it to their own vocabulary."""

    APPLICATION = "application"  # the target of the SBOM
    SOURCE = "source"  # fetched (fixed-output) or added to the store as a source
    LIBRARY = "library"  # any other output


class DigestOf(str, Enum):
    """What a component's SHA-256 digest was taken of; exported with the digest."""

    NAR = "nar"
    """SHA-256 of the path's NAR serialisation (``narHash`` in the store DB); built paths."""
    FIXED_OUTPUT = "fixed-output"
    """The hash a fixed-output derivation declares for a path that is not built (yet):
    of the file for ``flat`` mode, of the NAR for ``recursive`` mode."""
    DERIVATION = "derivation"
    """SHA-256 of the NAR of the ``.drv``: the output is not built, so the exact build
    recipe is what the build-time SBOM can pin."""
    OCI_MANIFEST = "oci-manifest"
    """The digest of an image's manifest (or of its config, for a docker-archive): the image."""
    FILE = "file"
    """SHA-256 of the file's bytes: a flat fixed-output source (a tarball), whose declared
    hash is of the file and was checked by Nix when it was fetched.  What whoever downloads
    the URL computes; the NAR hash is kept beside it (``nix:nar_sha256``)."""


@dataclass(frozen=True, slots=True)
class FixedOutput:
    """The declared hash of a fixed-output derivation (a source fetch) and where it comes from."""

    mode: str  # "flat" | "recursive" | "text"
    algo: str  # "sha256", ...
    hash_hex: str
    urls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class License:
    """One entry of nixpkgs ``meta.license``: a licence (an SPDX id when it has one), an SPDX
    licence *exception* (``llvm-exception``, which nixpkgs lists beside the licence it
    modifies), or a whole SPDX expression given as a string."""

    spdx_id: str | None
    name: str
    url: str | None = None
    free: bool | None = None
    exception: bool = False
    """``spdx_id`` is an exception on SPDX's list: it attaches to a licence with ``WITH``."""
    expression: str | None = None
    """The entry is a compound SPDX expression (a string such as ``MIT OR Apache-2.0``)."""

    @property
    def ref(self) -> str:
        """The SPDX id, or a ``LicenseRef-`` for licences SPDX does not list."""
        if self.expression:
            return self.expression
        if self.spdx_id:
            return self.spdx_id
        safe = "".join(ch if (ch.isascii() and ch.isalnum()) or ch in ".-" else "-" for ch in self.name[:200])
        return f"LicenseRef-{safe or 'unknown'}"


@dataclass(frozen=True, slots=True)
class Maintainer:
    """One entry of nixpkgs ``meta.maintainers``."""

    name: str
    email: str | None = None
    github: str | None = None

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.email else self.name


#: the supplier of a component nixpkgs metadata describes (docs/sbom.md, "Suppliers"): the
#: nixpkgs project packaged it, and its maintainers are named as the supplier's contacts
NIXPKGS_SUPPLIER = "Organization: NixOS/nixpkgs contributors"
NIXPKGS_URL = "https://github.com/NixOS/nixpkgs"


@dataclass(slots=True)
class Meta:
    """nixpkgs metadata merged in from a ``nix-env -qa --meta --json`` file."""

    attr_path: str | None = None
    description: str | None = None
    homepage: str | None = None
    licenses: tuple[License, ...] = ()
    cpe: str | None = None
    maintainers: tuple[Maintainer, ...] = ()
    matched_by: str | None = None  # "evaluation" | "meta-file:out-path" | "meta-file:name" (nix:meta_source)

    @property
    def license_expression(self) -> str | None:
        """The SPDX expression ``licenses`` mean (:func:`sbomgen.graph.licensing.from_nixpkgs`)."""
        if not self.licenses:
            return None
        from sbomgen.graph.licensing import from_nixpkgs

        return from_nixpkgs(self.licenses)

    @property
    def unfree(self) -> tuple[License, ...]:
        """The licences nixpkgs marks unfree (``free = false``)."""
        return tuple(lic for lic in self.licenses if lic.free is False)


@dataclass(slots=True)
class Component:
    store_path: str
    name: str
    version: str
    output: str | None
    """Output name (``out``, ``dev``...) for derivation outputs; None for plain sources."""
    drv_path: str | None = None
    outputs: tuple[str, ...] = ()
    """All outputs of the derivation (siblings included), for reference."""
    system: str | None = None
    is_source: bool = False
    """A path added to the store as a source (``inputSrcs``), not built by a derivation."""
    valid: bool = True
    """Registered in the store DB (built or added); False for unbuilt build-time outputs."""
    nar_hash_hex: str | None = None
    nar_size: int | None = None
    drv_nar_hash_hex: str | None = None
    fixed_output: FixedOutput | None = None
    meta: Meta | None = None
    depth: int = 0
    purl: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    """Further facts as ``prefix:name`` -> value (e.g. ``oci:layers``), exported as properties."""
    explicit_digest: tuple[DigestOf, str] | None = None
    """A digest that is not of a store path (an image's manifest digest)."""

    @property
    def ref(self) -> str:
        """A stable, store-independent identifier: the ``HASH-NAME`` base name."""
        return self.store_path.rsplit("/", 1)[-1]

    @property
    def digest(self) -> tuple[DigestOf, str] | None:
        """The SHA-256 (hex) this component is pinned by, and what it was taken of."""
        if self.explicit_digest:
            return self.explicit_digest
        fixed = self.fixed_output
        if fixed and fixed.mode == "flat" and fixed.algo == "sha256":
            return DigestOf.FILE, fixed.hash_hex
        if self.nar_hash_hex:
            return DigestOf.NAR, self.nar_hash_hex
        if self.fixed_output and self.fixed_output.algo == "sha256":
            return DigestOf.FIXED_OUTPUT, self.fixed_output.hash_hex
        if self.drv_nar_hash_hex:
            return DigestOf.DERIVATION, self.drv_nar_hash_hex
        return None

    @property
    def download_urls(self) -> tuple[str, ...]:
        return self.fixed_output.urls if self.fixed_output else ()

    @property
    def licenses(self) -> tuple[License, ...]:
        return self.meta.licenses if self.meta else ()

    @property
    def license_expression(self) -> str | None:
        """The SPDX licence expression of the component's metadata, or None."""
        return self.meta.license_expression if self.meta else None

    @property
    def checksums(self) -> tuple[tuple[str, str], ...]:
        """(algorithm, hex) pairs a consumer can check the component against: for a flat
        fixed-output source, the declared hash of the file (what downloading the URL gives);
        otherwise the SHA-256 :attr:`digest`."""
        fixed = self.fixed_output
        if fixed and fixed.mode == "flat" and not self.explicit_digest:
            return ((fixed.algo, fixed.hash_hex),)
        digest = self.digest
        return (("sha256", digest[1]),) if digest else ()


@dataclass(slots=True)
class DependencyGraph:
    """Components keyed by store path, and for each the store paths it depends on."""

    kind: GraphKind
    store_dir: str
    root: str
    components: dict[str, Component]
    edges: dict[str, tuple[str, ...]]
    depth: int | None = None
    #: with ``depth``: the components some of whose dependencies the depth limit left out
    #: (``None``: not known, e.g. for a graph read from a document)
    cut_off: frozenset[str] | None = None

    @property
    def root_component(self) -> Component:
        return self.components[self.root]

    def role(self, component: Component) -> Role:
        if component.store_path == self.root:
            return Role.APPLICATION
        if component.fixed_output or component.is_source:
            return Role.SOURCE
        return Role.LIBRARY

    def dependencies(self, path: str) -> tuple[str, ...]:
        return self.edges.get(path, ())

    def sorted_components(self) -> list[Component]:
        """Root first, then the rest ordered by name, version, output, path: stable output."""
        rest = sorted(
            (c for p, c in self.components.items() if p != self.root),
            key=lambda c: (c.name, c.version, c.output or "", c.store_path),
        )
        return [self.components[self.root], *rest]

    @property
    def total_nar_size(self) -> int:
        return sum(c.nar_size or 0 for c in self.components.values())
