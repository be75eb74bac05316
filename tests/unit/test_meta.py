import json
from pathlib import Path

import pytest

from sbomgen.errors import MetadataError
from sbomgen.graph.meta import load_meta

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "meta.json"


def _write(tmp_path, data) -> Path:
    path = tmp_path / "meta.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_license_shapes(tmp_path):
    index = load_meta(
        _write(
            tmp_path,
            {
                "nixpkgs.a": {"name": "a-1", "pname": "a", "meta": {"license": {"spdxId": "MIT", "fullName": "MIT License"}}},
                "nixpkgs.b": {"name": "b-1", "pname": "b", "meta": {"license": [{"spdxId": "Apache-2.0"}, {"fullName": "Unfree thing", "shortName": "unfree"}]}},
                "nixpkgs.c": {"name": "c-1", "pname": "c", "meta": {"license": "gpl2Plus"}},
                "nixpkgs.d": {"name": "d-1", "pname": "d", "meta": {"license": "BSD-3-Clause"}},
            },
        )
    )
    assert [lic.ref for lic in index.lookup("a-1", "a").licenses] == ["MIT"]
    assert [lic.ref for lic in index.lookup("b-1", "b").licenses] == ["Apache-2.0", "LicenseRef-Unfree-thing"]
    assert [lic.ref for lic in index.lookup("c-1", "c").licenses] == ["LicenseRef-gpl2Plus"]
    assert [lic.ref for lic in index.lookup("d-1", "d").licenses] == ["BSD-3-Clause"]


def test_match_by_exact_name_only_never_pname(tmp_path):
    """Issue 13: a pname guess put glibc's CPE on its source tarball and the app's licence on its
    vendored modules. Name matching is exact (and only behind --meta-match-names)."""
    index = load_meta(
        _write(
            tmp_path,
            {
                "nixpkgs.x": {"name": "x-1", "pname": "x", "meta": {"description": "one"}},
                "nixpkgs.glibc": {"name": "glibc-2.40-66", "pname": "glibc", "meta": {"description": "libc"}},
            },
        )
    )
    assert index.lookup("x-1", "x").matched_by == "meta-file:name"
    assert index.lookup("x-9", "x") is None  # same pname, other derivation: no guess
    assert index.lookup("glibc-2.40.tar.xz", "glibc") is None
    assert index.lookup(None, "zzz") is None


def test_match_by_out_path(tmp_path):
    index = load_meta(
        _write(
            tmp_path,
            {
                "nixpkgs.s": {"name": "s-1", "outputs": {"out": "/nix/store/" + "a" * 32 + "-s-1", "dev": "/nix/store/" + "b" * 32 + "-s-1-dev"},
                              "meta": {"description": "s"}},
                "nixpkgs.t": {"name": "t-1", "outputs": {"out": None}, "meta": {}},
            },
        )
    )
    assert index.has_out_paths
    assert index.lookup_out_path("/nix/store/" + "b" * 32 + "-s-1-dev").matched_by == "meta-file:out-path"
    assert index.lookup_out_path("/nix/store/" + "c" * 32 + "-s-1") is None


def test_cpe_from_identifiers(tmp_path):
    index = load_meta(
        _write(
            tmp_path,
            {
                "nixpkgs.s": {"name": "s-3", "pname": "s", "version": "3", "meta": {"identifiers": {"cpeParts": {"vendor": "sq", "product": "lite"}}}},
                "nixpkgs.t": {"name": "t-1", "meta": {"identifiers": {"cpe": "cpe:2.3:a:t:t:1:*:*:*:*:*:*:*"}}},
            },
        )
    )
    assert index.lookup("s-3", "s").cpe == "cpe:2.3:a:sq:lite:3:*:*:*:*:*:*:*"
    assert index.lookup("t-1", "t").cpe == "cpe:2.3:a:t:t:1:*:*:*:*:*:*:*"


@pytest.mark.parametrize(
    "content,message",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "shape"),
        ('{"nixpkgs.a": {"pname": "a"}}', "has no \"name\""),
        ('{"nixpkgs.a": {"name": "a", "meta": 3}}', "not an object"),
    ],
)
def test_bad_meta_files(tmp_path, content, message):
    with pytest.raises(MetadataError, match=message):
        load_meta(_write(tmp_path, content))


def test_missing_meta_file(tmp_path):
    with pytest.raises(MetadataError, match="cannot read"):
        load_meta(tmp_path / "nope.json")


def test_bundled_fixture_loads():
    index = load_meta(FIXTURE)
    sqlite = index.lookup("sqlite-3.46.0", "sqlite")
    assert sqlite is not None and [lic.spdx_id for lic in sqlite.licenses] == ["blessing"]
    assert len(index) >= 7
