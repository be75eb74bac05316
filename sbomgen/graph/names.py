"""Names and versions, split the way Nix does it.

``builtins.parseDrvName`` splits at the first ``-`` that is followed by a character that is
not a letter: ``glibc-2.40-66`` -> (``glibc``, ``2.40-66``), ``nss-cacert-3.107`` ->
(``nss-cacert``, ``3.107``), ``tzdata`` -> (``tzdata``, ``""``).
"""

from __future__ import annotations

#: Output names nixpkgs commonly uses; a store path name ending in ``-<one of these>`` is
#: that output of a derivation named by the rest (``glibc-2.40-66-dev``).
KNOWN_OUTPUTS = frozenset(
    {
        "bin", "dev", "out", "lib", "man", "doc", "devdoc", "info", "static", "debug",
        "devman", "include", "python", "modules", "terminfo", "data", "examples", "tools",
    }
)

#: Archive and patch suffixes stripped from the version of a fetched source
#: (``sqlite-autoconf-3460000.tar.gz`` -> version ``3460000``).
SOURCE_SUFFIXES = (
    ".tar.gz", ".tar.xz", ".tar.bz2", ".tar.zst", ".tar.lz", ".tar.lzma", ".tar.Z", ".tar",
    ".tgz", ".txz", ".tbz", ".tbz2", ".zip", ".gem", ".crate", ".whl", ".jar", ".deb", ".rpm",
    ".patch", ".diff", ".gz", ".xz", ".bz2", ".zst",
)


def parse_drv_name(name: str) -> tuple[str, str]:
    """Exactly ``builtins.parseDrvName``: returns ``(name, version)``; version may be empty."""
    for index in range(len(name) - 1):
        if name[index] == "-" and not name[index + 1].isalpha():
            return name[:index], name[index + 1 :]
    return name, ""


def strip_source_suffix(name: str) -> tuple[str, str]:
    """Split ``foo-1.2.tar.gz`` into (``foo-1.2``, ``.tar.gz``); suffix empty when none."""
    for suffix in SOURCE_SUFFIXES:
        if name.endswith(suffix) and not name[: -len(suffix)].startswith(".") and len(name) > len(suffix):
            return name[: -len(suffix)], suffix
    return name, ""


def split_output_suffix(path_name: str) -> tuple[str, str]:
    """``glibc-2.40-66-dev`` -> (``glibc-2.40-66``, ``dev``); no known suffix -> output ``out``."""
    base, _, last = path_name.rpartition("-")
    if base and last in KNOWN_OUTPUTS and last != "out":
        return base, last
    return path_name, "out"


def output_path_name(drv_name: str, output: str) -> str:
    """The name Nix gives output ``output`` of a derivation named ``drv_name``."""
    return drv_name if output == "out" else f"{drv_name}-{output}"
