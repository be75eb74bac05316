"""The ATerm .drv parser, on real Nix 2.8 output and on damaged input."""

from __future__ import annotations

import pytest

from sbomgen.errors import DerivationError
from sbomgen.nix.derivation import parse_derivation, read_derivation

MULTI = (
    'Derive([("bin","/s/7r-glibc-2.40-66-bin","",""),("dev","/s/9k-glibc-2.40-66-dev","",""),'
    '("out","/s/mg-glibc-2.40-66","","")],[("/s/aa-stdenv-linux.drv",["out"]),'
    '("/s/bb-glibc-2.40.tar.xz.drv",["out"])],["/s/cc-setup.sh"],"x86_64-linux","/bin/sh",'
    '["-c",". $stdenv/setup\\nprintf \'%s\\\\n\' \\"$out\\" > $out/x\\tdone"],'
    '[("PATH","/usr/bin:/bin"),("name","glibc-2.40-66"),("outputs","out dev bin"),'
    '("pname","glibc"),("version","2.40-66")])'
)
FLAT = (
    'Derive([("out","/s/dd-sqlite-autoconf-3460000.tar.gz","sha256",'
    '"c0e43cfdad1e0ead25da6cbaa5b0cbb948b5c83ae1770fe349a6f18af5de07a4")],[],[],"x86_64-linux",'
    '"/bin/sh",["-c","printf"],[("name","sqlite-autoconf-3460000.tar.gz"),'
    '("url","https://www.sqlite.org/2024/sqlite-autoconf-3460000.tar.gz")])'
)
RECURSIVE = (
    'Derive([("out","/s/ee-go-modules","r:sha256","abcd")],[],[],"x86_64-linux","/bin/sh",[],'
    '[("name","weather-0.0.1-go-modules"),("outputHashMode","recursive")])'
)


def test_multi_output():
    drv = parse_derivation(MULTI, "/s/xx-glibc-2.40-66.drv")
    assert list(drv.outputs) == ["bin", "dev", "out"]
    assert drv.output_names == ("out", "dev", "bin")
    assert drv.outputs["dev"].path == "/s/9k-glibc-2.40-66-dev"
    assert drv.input_drvs == {"/s/aa-stdenv-linux.drv": ("out",), "/s/bb-glibc-2.40.tar.xz.drv": ("out",)}
    assert drv.input_srcs == ("/s/cc-setup.sh",)
    assert drv.system == "x86_64-linux" and drv.builder == "/bin/sh"
    assert drv.args[1] == '. $stdenv/setup\nprintf \'%s\\n\' "$out" > $out/x\tdone'
    assert drv.name == "glibc-2.40-66" and drv.env["pname"] == "glibc"
    assert not drv.is_fixed_output
    assert drv.outputs["out"].mode is None and drv.path == "/s/xx-glibc-2.40-66.drv"


def test_fixed_output_flat_and_recursive():
    flat = parse_derivation(FLAT)
    assert flat.is_fixed_output
    assert flat.outputs["out"].mode == "flat" and flat.outputs["out"].algo == "sha256"
    assert flat.env["url"].endswith("3460000.tar.gz")
    rec = parse_derivation(RECURSIVE)
    assert rec.outputs["out"].mode == "recursive" and rec.outputs["out"].algo == "sha256"
    assert rec.args == () and rec.input_drvs == {}


def test_dyn_drv_version_form():
    drv = parse_derivation('DrvWithVersion("xp-dyn-drv",' + FLAT[len("Derive(") :])
    assert drv.is_fixed_output


@pytest.mark.parametrize(
    "text,expected",
    [
        ("", "'Derive('"),
        ("garbage", "'Derive('"),
        (FLAT[:-1], "')'"),
        (FLAT[:40], "end of the string"),
        (FLAT.replace('"x86_64-linux",', '"x86_64-linux"'), "','"),
        (FLAT + "trailing", "end of the file"),
        (FLAT.replace("[],[]", "[],[1]"), "a string"),
    ],
)
def test_corrupt(text, expected):
    with pytest.raises(DerivationError) as info:
        parse_derivation(text, "/s/broken.drv")
    message = str(info.value)
    assert message.startswith("corrupt derivation /s/broken.drv: expected ")
    assert expected in message and "at offset" in message
    assert "\n" not in message


def test_missing_file(tmp_path):
    with pytest.raises(DerivationError, match="derivation not found"):
        read_derivation(str(tmp_path / "x.drv"))


def test_unreadable_file(tmp_path):
    path = tmp_path / "dir.drv"
    path.mkdir()
    with pytest.raises(DerivationError, match="cannot read derivation"):
        read_derivation(str(path))


@pytest.mark.nix
def test_real_drv_files(nix_store):
    """Every .drv in the fixture store parses, and agrees with `nix-store -q --outputs`."""
    drvs = sorted(p for p in nix_store.store_dir.iterdir() if p.name.endswith(".drv"))
    assert len(drvs) >= 15
    for path in drvs:
        drv = read_derivation(str(path))
        outputs = set(nix_store.run("nix-store", "-q", "--outputs", str(path)).split())
        assert {o.path for o in drv.outputs.values()} == outputs
        refs = set(nix_store.run("nix-store", "-q", "--references", str(path)).split())
        assert set(drv.input_drvs) | set(drv.input_srcs) == refs
