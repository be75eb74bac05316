"""The fixture itself: ``fixtures/weather.nix`` built by the real nix-build really has the shape
every other test relies on. Everything here is asked of Nix (``nix-store``) or read from its
own database, never from sbomgen.
"""

from __future__ import annotations

import os
import re
import sqlite3
import stat
from pathlib import Path

import pytest

from tests.conftest import BUILT

pytestmark = pytest.mark.nix


def _name(path: str) -> str:
    """The name part of a store path or .drv (after the 32-character hash and the dash)."""
    return os.path.basename(path)[33:]


def _names(paths: set[str]) -> set[str]:
    return {_name(p) for p in paths}


def _db(nix_store):
    return sqlite3.connect(f"file:{nix_store.db_path}?mode=ro", uri=True)


def _target(nix_store, result: str) -> str:
    return os.readlink(nix_store.results[result])


def test_every_attr_and_output_has_a_result_link(nix_store):
    expected = {attr if out == "out" else f"{attr}-{out}" for attr, outs in BUILT.items() for out in outs}
    assert set(nix_store.results) == expected
    for key, link in nix_store.results.items():
        assert link.is_symlink(), key
        target = os.readlink(link)
        assert target.startswith(f"{nix_store.store_dir}/"), (key, target)
        assert Path(target).exists(), (key, target)
    # the links name their output: result-glibc-dev -> ...-glibc-2.40-66-dev
    assert _name(_target(nix_store, "glibc")) == "glibc-2.40-66"
    assert _name(_target(nix_store, "glibc-dev")) == "glibc-2.40-66-dev"
    assert _name(_target(nix_store, "sqlite-bin")) == "sqlite-3.46.0-bin"
    assert _name(_target(nix_store, "tzdata")) == "tzdata"


def test_app_runtime_closure_is_libs_certs_tzdata_only(nix_store):
    closure = nix_store.query_requisites(nix_store.results["app"])
    assert _names(closure) == {"weather-0.0.1", "glibc-2.40-66", "sqlite-3.46.0", "nss-cacert-3.107", "tzdata"}
    # exactly the built outputs, not merely same-named ones
    for key in ("glibc", "sqlite", "cacert", "tzdata"):
        assert _target(nix_store, key) in closure, key
    # build-only things stay out: compilers, stdenv, sources, dev/bin outputs, vendored modules
    for key in ("go", "gcc", "stdenv", "glibc-dev", "glibc-bin", "sqlite-dev", "sqlite-bin"):
        assert _target(nix_store, key) not in closure, key
    assert not any(_name(p).endswith((".tar.gz", ".tar.xz", "-go-modules", ".sh", ".go")) for p in closure)


def test_entrypoint_closure_is_app_closure_plus_itself(nix_store):
    entry = _target(nix_store, "entrypoint")
    assert _name(entry) == "weather-entrypoint"
    assert os.path.isfile(entry) and os.access(entry, os.X_OK)
    app = nix_store.query_requisites(nix_store.results["app"])
    assert nix_store.query_requisites(entry) == app | {entry}


def test_app_files_binary_symlink_and_embedded_references(nix_store):
    app = Path(_target(nix_store, "app"))
    binary = app / "bin" / "weather"
    assert stat.S_IMODE(binary.lstat().st_mode) == 0o555  # 0755, made read-only by Nix
    assert (app / "bin" / "weather-proxy").is_symlink()
    assert os.readlink(app / "bin" / "weather-proxy") == "weather"
    text = binary.read_text()
    for key in ("glibc", "sqlite", "cacert", "tzdata"):
        assert _target(nix_store, key) in text, key


def test_multi_output_derivations_register_every_output(nix_store):
    glibc_drv = nix_store.query_deriver(nix_store.results["glibc"])
    sqlite_drv = nix_store.query_deriver(nix_store.results["sqlite-bin"])
    assert _name(glibc_drv) == "glibc-2.40-66.drv"
    assert _name(sqlite_drv) == "sqlite-3.46.0.drv"
    with _db(nix_store) as conn:
        def outputs(drv: str) -> dict[str, str]:
            rows = conn.execute(
                "SELECT o.id, o.path FROM DerivationOutputs o JOIN ValidPaths v ON v.id = o.drv WHERE v.path = ?",
                (drv,),
            )
            return dict(rows)

        assert outputs(glibc_drv) == {o: _target(nix_store, "glibc" if o == "out" else f"glibc-{o}") for o in ("out", "dev", "bin")}
        assert outputs(sqlite_drv) == {o: _target(nix_store, "sqlite" if o == "out" else f"sqlite-{o}") for o in ("bin", "dev", "out")}
    # every output has the same deriver; dev and bin refer to out
    for key in ("glibc-dev", "glibc-bin"):
        assert nix_store.query_deriver(nix_store.results[key]) == glibc_drv
        refs = nix_store.run("nix-store", "-q", "--references", _target(nix_store, key)).split()
        assert _target(nix_store, "glibc") in refs, key
    # sqlite's library refers to glibc
    assert _target(nix_store, "glibc") in nix_store.query_requisites(nix_store.results["sqlite"])
    # the .drv keeps nixpkgs' order of outputs: sqlite's "bin" comes first
    drv_text = Path(sqlite_drv).read_text()
    assert re.search(r'\("outputs","bin dev out"\)', drv_text)
    assert '("pname","sqlite")' in drv_text and '("version","3.46.0")' in drv_text


def test_app_build_closure_has_compilers_fetches_and_sources(nix_store):
    app_drv = nix_store.instantiate("app")
    assert app_drv == nix_store.query_deriver(nix_store.results["app"])
    closure = nix_store.query_requisites(app_drv)
    names = _names(closure)
    for drv in (
        "go-1.23.4.drv",
        "gcc-13.3.0.drv",
        "stdenv-linux.drv",
        "bootstrap-tools.drv",
        "glibc-2.40-66.drv",
        "sqlite-3.46.0.drv",
        "nss-cacert-3.107.drv",
        "tzdata.drv",
        "weather-0.0.1-go-modules.drv",
        "glibc-2.40.tar.xz.drv",
        "sqlite-autoconf-3460000.tar.gz.drv",
        "nss-3.107.tar.gz.drv",
        "weather-0.0.1.drv",
    ):
        assert drv in names, drv
    # plain sources added to the store by path are inputSrcs of the closure
    assert {"setup.sh", "main.go"} <= names
    # the compilers are exactly the instantiated attributes
    assert nix_store.instantiate("go") in closure
    assert nix_store.instantiate("gcc") in closure
    # and none of it reaches the runtime closure
    assert not (closure & nix_store.query_requisites(nix_store.results["app"]))


def test_fixed_output_fetches_are_declared_like_fetchurl(nix_store):
    closure = nix_store.query_requisites(nix_store.instantiate("app"))
    fetches = {_name(p): Path(p).read_text() for p in closure if _name(p).endswith((".tar.gz.drv", ".tar.xz.drv"))}
    assert set(fetches) >= {"glibc-2.40.tar.xz.drv", "sqlite-autoconf-3460000.tar.gz.drv", "nss-3.107.tar.gz.drv"}
    for name, text in fetches.items():
        assert '("outputHashMode","flat")' in text, name
        assert '("outputHashAlgo","sha256")' in text, name
        assert re.search(r'\("urls?","https://', text), name
    # nixpkgs' fetchurl passes mirrors as `urls`: a space-separated list in the environment
    urls = re.search(r'\("urls","([^"]*)"\)', fetches["nss-3.107.tar.gz.drv"]).group(1).split(" ")
    assert len(urls) == 2 and all(u.endswith("/nss-3.107.tar.gz") for u in urls)


def test_content_addresses_in_the_db(nix_store):
    with _db(nix_store) as conn:
        ca = {_name(path): value for path, value in conn.execute("SELECT path, ca FROM ValidPaths WHERE ca IS NOT NULL")}
    # buildGoModule's vendored modules: recursive (NAR) sha256
    assert ca["weather-0.0.1-go-modules"].startswith("fixed:r:sha256:")
    # fetchurl: flat sha256 of the file
    for name in ("glibc-2.40.tar.xz", "sqlite-autoconf-3460000.tar.gz", "nss-3.107.tar.gz"):
        assert ca[name].startswith("fixed:sha256:"), name
    # sources added by path are recursive too; .drv files are text-addressed
    assert ca["setup.sh"].startswith("fixed:r:sha256:")
    assert ca["weather-0.0.1.drv"].startswith("text:sha256:")
    # the recursive FOD's tree is what the fixture promises
    modules = next(Path(p) for p in nix_store.store_dir.iterdir() if p.name.endswith("-weather-0.0.1-go-modules"))
    assert (modules / "modules.txt").is_file()
    assert (modules / "github.com" / "mattn" / "go-sqlite3" / "sqlite3.go").is_file()


def test_names_as_nixpkgs_writes_them(nix_store):
    glibc_drv = Path(nix_store.query_deriver(nix_store.results["glibc"])).read_text()
    assert '("pname","glibc")' in glibc_drv and '("version","2.40-66")' in glibc_drv
    tzdata_drv = Path(nix_store.query_deriver(nix_store.results["tzdata"])).read_text()
    assert '("name","tzdata")' in tzdata_drv
    assert '"pname"' not in tzdata_drv and '"version"' not in tzdata_drv


def test_the_file_itself_is_the_app(nix_store):
    """A plain ``nix-build fixtures/weather.nix`` (no -A) builds the app; its output verifies."""
    weather = Path(__file__).resolve().parents[2] / "fixtures" / "weather.nix"
    assert nix_store.run("nix-instantiate", str(weather)).strip() == nix_store.instantiate("app")
    assert nix_store.run("nix-store", "--verify-path", _target(nix_store, "app")) == ""
