import shutil
import subprocess

import pytest

from sbomgen.graph.identifiers import cpe23, purl_for
from sbomgen.graph.model import Component
from sbomgen.graph.names import parse_drv_name, split_output_suffix, strip_source_suffix

CASES = {
    "glibc-2.40-66": ("glibc", "2.40-66"),
    "nss-cacert-3.107": ("nss-cacert", "3.107"),
    "tzdata": ("tzdata", ""),
    "weather-0.0.1-go-modules": ("weather", "0.0.1-go-modules"),
    "python3.11-requests-2.31.0": ("python3.11-requests", "2.31.0"),
    "go-1.23.4": ("go", "1.23.4"),
    "hello-": ("hello-", ""),
    "foo-bar-baz": ("foo-bar-baz", ""),
    "foo--1": ("foo", "-1"),
    "-1.0": ("", "1.0"),
    "x-_y": ("x", "_y"),
    "": ("", ""),
}


@pytest.mark.parametrize("name,expected", sorted(CASES.items()))
def test_parse_drv_name(name, expected):
    assert parse_drv_name(name) == expected


@pytest.mark.nix
def test_parse_drv_name_agrees_with_nix():
    """The same cases through Nix's own builtins.parseDrvName."""
    if not shutil.which("nix-instantiate"):
        pytest.skip("nix-instantiate not installed")
    names = " ".join(f'"{n}"' for n in CASES)
    expr = f"map (n: let p = builtins.parseDrvName n; in [p.name p.version]) [ {names} ]"
    out = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", "-E", expr, "--option", "substituters", ""],
        capture_output=True, text=True, check=True,
    ).stdout
    import json

    assert [tuple(x) for x in json.loads(out)] == list(CASES.values())


def test_strip_source_suffix():
    assert strip_source_suffix("sqlite-autoconf-3460000.tar.gz") == ("sqlite-autoconf-3460000", ".tar.gz")
    assert strip_source_suffix("glibc-2.40.tar.xz") == ("glibc-2.40", ".tar.xz")
    assert strip_source_suffix("fix-cve.patch") == ("fix-cve", ".patch")
    assert strip_source_suffix("setup.sh") == ("setup.sh", "")
    assert strip_source_suffix(".tar.gz") == (".tar.gz", "")


def test_split_output_suffix():
    assert split_output_suffix("glibc-2.40-66-dev") == ("glibc-2.40-66", "dev")
    assert split_output_suffix("glibc-2.40-66") == ("glibc-2.40-66", "out")
    assert split_output_suffix("sqlite-3.46.0-bin") == ("sqlite-3.46.0", "bin")
    assert split_output_suffix("dev") == ("dev", "out")


def _component(name, version, output):
    return Component(store_path="/s/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x", name=name, version=version, output=output)


def test_purls():
    assert purl_for(_component("glibc", "2.40-66", "out")) == "pkg:nix/glibc@2.40-66"
    assert purl_for(_component("glibc", "2.40-66", "dev")) == "pkg:nix/glibc@2.40-66?output=dev"
    assert purl_for(_component("tzdata", "", "out")) == "pkg:nix/tzdata"
    assert purl_for(_component("setup.sh", "", None)) == "pkg:nix/setup.sh"
    assert purl_for(_component("c++", "1.0", "out")) == "pkg:nix/c%2B%2B@1.0"


def test_cpe23_escapes_and_wildcards():
    assert cpe23("sqlite", "sqlite", "3.46.0") == "cpe:2.3:a:sqlite:sqlite:3.46.0:*:*:*:*:*:*:*"
    assert cpe23("GNU", "C Library", None) == "cpe:2.3:a:gnu:c_library:*:*:*:*:*:*:*:*"
    assert cpe23("a:b", "p", "1") == "cpe:2.3:a:a\\:b:p:1:*:*:*:*:*:*:*"
