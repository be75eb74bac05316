"""Issue 13, items 1, 2 and 6: expressions and flakes as targets, metadata keyed by derivation.

Every test runs the real CLI against the real Nix (2.8 here) and a private store.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from sbomgen.formats.provenance import path_of_uri
from tests.helpers import cdx_components, cdx_property, load_json, run_sbomgen, schema_errors
from tests.hostile.common import assert_one_line_error

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
WEATHER = FIXTURES / "weather.nix"


def _sbom(store, tmp_path, *args, cwd=None):
    spdx, cdx = tmp_path / "s.spdx.json", tmp_path / "c.cdx.json"
    run = run_sbomgen(*args, "--spdx", str(spdx), "--cdx", str(cdx), env=store.env, cwd=cwd)
    assert run.code == 0, run.stderr
    return load_json(spdx), load_json(cdx)


def _by_name(bom) -> dict[tuple[str, str | None], dict]:
    return {(c["name"] + "-" + c.get("version", ""), cdx_property(c, "nix:output")): c for c in cdx_components(bom)}


def _licences(component) -> list[str]:
    out = []
    for item in component.get("licenses", []):
        if "expression" in item:
            out.append(item["expression"])
        else:
            lic = item["license"]
            out.append(lic.get("id") or lic.get("name"))
    return out


def _valid(store, path: str | Path) -> bool:
    proc = subprocess.run(["nix-store", "--check-validity", str(path)], env={**os.environ, **store.env}, capture_output=True)
    return proc.returncode == 0


# --- item 1: expressions as targets; --buildtime needs evaluation only -------------------------


def test_buildtime_sbom_of_an_expression_builds_nothing(scratch_store, tmp_path):
    spdx, bom = _sbom(scratch_store, tmp_path, "-f", str(WEATHER), "-A", "app", "--buildtime")
    root = bom["metadata"]["component"]
    assert (root["name"], root["version"]) == ("weather", "0.0.1")
    drv = cdx_property(root, "nix:drv_path")
    assert drv.startswith(str(scratch_store.store_dir)) and os.path.isfile(drv)  # instantiated ...
    assert not _valid(scratch_store, cdx_property(root, "nix:store_path"))  # ... never built
    assert cdx_property(root, "nix:built") == "false"
    assert schema_errors("spdx-2.3", spdx) == [] and schema_errors("cyclonedx-1.6", bom) == []
    # the same graph as the .drv gives
    (tmp_path / "d").mkdir()
    _, from_drv = _sbom(scratch_store, tmp_path / "d", drv, "--buildtime")
    assert sorted(c["bom-ref"] for c in cdx_components(from_drv)) == sorted(c["bom-ref"] for c in cdx_components(bom))


def test_runtime_sbom_of_an_unbuilt_expression_says_build_it_first(scratch_store, tmp_path):
    run = run_sbomgen("-f", str(WEATHER), "-A", "app", "--spdx", str(tmp_path / "x.json"), env=scratch_store.env)
    assert_one_line_error(run, 5, "is not built", "build it first: nix-build", "-A app", "--buildtime")
    assert not (tmp_path / "x.json").exists()


def test_runtime_sbom_of_a_built_expression_is_the_result_s(nix_store, tmp_path):
    _, from_expr = _sbom(nix_store, tmp_path, "-f", str(WEATHER), "-A", "app")
    (tmp_path / "r").mkdir()
    _, from_result = _sbom(nix_store, tmp_path / "r", str(nix_store.results["app"]))
    assert [c["bom-ref"] for c in cdx_components(from_expr)] == [c["bom-ref"] for c in cdx_components(from_result)]
    # FILE.nix as the target reads like nix-build FILE.nix -A ATTR
    (tmp_path / "f").mkdir()
    _, positional = _sbom(nix_store, tmp_path / "f", str(WEATHER), "-A", "app")
    assert [c["bom-ref"] for c in cdx_components(positional)] == [c["bom-ref"] for c in cdx_components(from_expr)]


def test_arg_and_argstr_reach_the_expression(scratch_store, tmp_path):
    def drv_of(*args):
        run = run_sbomgen("-f", str(WEATHER), "-A", "tzdata", "--buildtime", *args, "--cdx", "-", env=scratch_store.env)
        assert run.code == 0, run.stderr
        return cdx_property(json.loads(run.stdout)["metadata"]["component"], "nix:drv_path")

    default = drv_of()
    if os.uname().machine == "x86_64" and os.uname().sysname == "Linux":
        assert drv_of("--argstr", "system", "x86_64-linux") == default
    other = drv_of("--argstr", "system", "riscv64-linux")
    assert other != default
    assert drv_of("--arg", "system", '"riscv64-" + "linux"') == other  # --arg takes a Nix expression
    # the attribute path is nix-build's: a non-default output
    run = run_sbomgen("-f", str(WEATHER), "-A", "glibc.dev", "--buildtime", "--cdx", "-", env=scratch_store.env)
    assert run.code == 0, run.stderr
    assert json.loads(run.stdout)["metadata"]["component"]["name"] == "glibc"


def test_every_command_takes_an_expression(nix_store, tmp_path):
    expr = ["-f", str(WEATHER), "-A", "app"]
    run = run_sbomgen("why", *expr, "--buildtime", "go", "--max-chains", "1", env=nix_store.env)
    assert run.code == 0 and run.stdout.splitlines()[1] == "  weather 0.0.1 -> go 1.23.4", run.stdout + run.stderr
    run = run_sbomgen("why", *expr, "openssl", env=nix_store.env)
    assert run.code == 1 and "openssl is not in the runtime closure" in run.stdout
    run = run_sbomgen("graph", *expr, "-o", str(tmp_path / "g.dot"), env=nix_store.env)
    assert run.code == 0 and "weather" in (tmp_path / "g.dot").read_text(), run.stderr
    run = run_sbomgen("check", *expr, "--policy", str(FIXTURES / "policy.toml"), "--json", "-", env=nix_store.env)
    assert run.code in (0, 1) and json.loads(run.stdout), run.stderr
    # licences come from the evaluation: a deny rule sees them without any --meta
    policy = tmp_path / "p.toml"
    policy.write_text('[licenses]\ndeny = ["MIT"]\n')
    run = run_sbomgen("check", *expr, "--policy", str(policy), "--json", "-", env=nix_store.env)
    assert run.code == 1 and "MIT" in run.stdout, run.stdout + run.stderr
    prov = subprocess.run([os.sys.executable, "-m", "sbomgen.cli.provenance", *expr, "-o", str(tmp_path / "p.json")],
                          env={**os.environ, **nix_store.env}, capture_output=True, text=True)
    assert prov.returncode == 0, prov.stderr
    statement = load_json(tmp_path / "p.json")
    assert path_of_uri(statement["subject"][0]["uri"]) == os.path.realpath(nix_store.results["app"])
    assert statement["predicate"]["buildDefinition"]["externalParameters"]["attributes"] == ["app"]


@pytest.mark.parametrize(
    "args,code,fragments",
    [
        (["-f", "WEATHER", "-A", "nope"], 13, ["attribute 'nope'", "not found"]),
        (["-f", "WEATHER", "-A", "srcs"], 13, ["not a derivation"]),
        (["-f", "WEATHER", "-A", "app.nope.deeper"], 13, ["'nope'"]),
        (["-f", "MISSING"], 3, ["no such Nix expression"]),
        (["RESULT", "-A", "app"], 2, ["need a Nix expression"]),
        (["RESULT", "-f", "WEATHER"], 2, ["not both"]),
        (["-f", "WEATHER", "--arg", "bad name", "1"], 2, ["not a Nix identifier"]),
        (["-f", "WEATHER", "--arg", "x", "(("], 13, ["evaluating"]),
        (["./nowhere#app", "--buildtime"], 3, ["no flake.nix"]),
        (["-f", "THROWS", "--buildtime"], 13, ["evaluating", "boom"]),
    ],
)
def test_bad_expression_targets_are_one_line_errors(nix_store, tmp_path, args, code, fragments):
    throws = tmp_path / "throws.nix"
    throws.write_text('throw "boom"\n')
    values = {"WEATHER": str(WEATHER), "MISSING": str(tmp_path / "missing.nix"), "RESULT": str(nix_store.results["app"]),
              "THROWS": str(throws)}
    run = run_sbomgen(*(values.get(a, a) for a in args), "--spdx", str(tmp_path / "x.json"), env=nix_store.env, cwd=tmp_path)
    assert_one_line_error(run, code, *fragments)
    assert not (tmp_path / "x.json").exists()


def test_arg_without_a_value_is_a_usage_error(nix_store, tmp_path):
    run = run_sbomgen("-f", str(WEATHER), "--argstr", "system", env=nix_store.env)
    assert run.code == 2 and "Traceback" not in run.stderr and "takes a NAME and a value" in run.stderr


# --- item 1: flakes ---------------------------------------------------------------------------


@pytest.fixture
def flake_dir(tmp_path) -> Path:
    """A flake with no inputs (no network) whose package is the fixture's app."""
    root = tmp_path / "flake"
    root.mkdir()
    shutil.copy(WEATHER, root / "weather.nix")
    shutil.copytree(FIXTURES / "weather", root / "weather")
    system = subprocess.run(["nix-instantiate", "--eval", "--expr", "builtins.currentSystem"], capture_output=True, text=True,
                            check=True).stdout.strip()
    (root / "flake.nix").write_text(
        "{ inputs = { };\n"
        f"  outputs = {{ self }}: {{ packages.{system} = let w = import ./weather.nix {{ system = {system}; }}; in {{\n"
        "    weather = w.app; default = w.app; glibcDev = w.glibc.dev; }; }; }\n"
    )
    return root


def test_flake_references_as_targets(scratch_store, tmp_path, flake_dir):
    # the flake's derivation is the expression's: same sources, same recipe
    _, from_file = _sbom(scratch_store, tmp_path, "-f", str(WEATHER), "-A", "app", "--buildtime")
    drv = cdx_property(from_file["metadata"]["component"], "nix:drv_path")
    for ref, cwd in ((f"path:{flake_dir}#weather", None), (f"{flake_dir}#weather", None), (".#weather", flake_dir),
                     (f"{flake_dir}#", None)):
        out = tmp_path / ref.replace("/", "_").replace(":", "_").replace("#", "_")
        out.mkdir()
        spdx, bom = _sbom(scratch_store, out, ref, "--buildtime", cwd=cwd)
        assert cdx_property(bom["metadata"]["component"], "nix:drv_path") == drv, ref
        assert cdx_property(bom["metadata"]["component"], "nix:meta_source") == "evaluation"
    run = run_sbomgen(f"{flake_dir}#nope", "--buildtime", env=scratch_store.env)
    assert_one_line_error(run, 13, "does not provide 'nope'")
    run = run_sbomgen(f"{flake_dir}#weather", env=scratch_store.env)  # runtime, not built
    assert_one_line_error(run, 5, "build it first: nix build")
    run = run_sbomgen(f"{flake_dir}#weather", "-A", "x", env=scratch_store.env)
    assert_one_line_error(run, 2, "after '#'")


# --- item 2: metadata keyed by derivation, never by name ---------------------------------------


def test_evaluated_metadata_is_keyed_by_derivation(nix_store, tmp_path):
    spdx, bom = _sbom(nix_store, tmp_path, "-f", str(WEATHER), "-A", "app", "--buildtime")
    by = _by_name(bom)
    app = by[("weather-0.0.1", "out")]
    assert cdx_property(app, "nix:meta_source") == "evaluation"
    assert cdx_property(app, "nix:attr_path") == "app"
    assert app.get("description") == "A caching HTTP proxy for weather data"
    assert "MIT" in " ".join(_licences(app))
    # the vendored modules tree has no meta: no licence, not the app's
    modules = next(c for c in cdx_components(bom) if c["name"].startswith("weather") and "go-modules" in cdx_property(c, "nix:store_path"))
    assert _licences(modules) == [] and cdx_property(modules, "nix:meta_source") is None
    # glibc's source tarball gets neither glibc's CPE nor its licence; glibc's outputs all do
    tarball = next(c for c in cdx_components(bom) if cdx_property(c, "nix:store_path").endswith("-glibc-2.40.tar.xz"))
    assert "cpe" not in tarball and _licences(tarball) == [] and cdx_property(tarball, "nix:meta_source") is None
    for output in ("out", "dev"):
        glibc = by[("glibc-2.40-66", output)]
        assert "gnu:glibc" in glibc.get("cpe", "") and "LGPL-2.1-or-later" in " ".join(_licences(glibc)), output
        assert cdx_property(glibc, "nix:meta_source") == "evaluation"
    # every component with metadata got it from the derivation that built it
    assert {cdx_property(c, "nix:meta_source") for c in cdx_components(bom)} == {"evaluation", None}
    # derivations without meta (fetches, stdenv, goModules) and sources: nothing
    for component in cdx_components(bom):
        path = cdx_property(component, "nix:store_path")
        if any(path.endswith(n) for n in ("-stdenv-linux", "-weather-0.0.1-go-modules", ".tar.gz", ".tar.xz", "-setup.sh", "-main.go")):
            assert not component.get("licenses") and not component.get("description"), path
    assert schema_errors("spdx-2.3", spdx) == [] and schema_errors("cyclonedx-1.6", bom) == []


def test_meta_survives_throwing_and_odd_attributes(scratch_store, tmp_path):
    expr = tmp_path / "odd.nix"
    expr.write_text(r'''
{ system ? builtins.currentSystem }:
let
  mk = name: attrs: meta: (derivation ({ inherit name system; builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; } // attrs)) // { inherit meta; };
  a = mk "a-1" { } { description = "a"; license = throw "no licence for you"; };
  b = mk "b-1" { } { description = "b"; license = { spdxId = "MIT"; fullName = "MIT"; f = x: x; }; homepage = ./odd.nix; };
  c = mk "c-1" { } (throw "meta throws");
in mk "top-1" { deps = [ a b c "a string" 3 ]; single = b; } { description = "top"; }
''')
    run = run_sbomgen("-f", str(expr), "--buildtime", "--cdx", "-", env=scratch_store.env)
    assert run.code == 0, run.stderr
    bom = json.loads(run.stdout)
    by = {c["name"]: c for c in cdx_components(bom)}
    assert by["a"]["description"] == "a" and not by["a"].get("licenses")  # the throwing licence is dropped
    assert by["b"]["description"] == "b" and "MIT" in " ".join(_licences(by["b"]))
    assert not by["c"].get("description") and cdx_property(by["c"], "nix:meta_source") is None
    assert by["top"]["description"] == "top"


def test_meta_file_is_matched_by_output_path(nix_store, tmp_path):
    top = tmp_path / "set.nix"
    top.write_text(f"let w = import {WEATHER} {{ }}; in {{ inherit (w) glibc sqlite app tzdata cacert; }}\n")
    dump = json.loads(nix_store.run("nix-env", "-f", str(top), "-qa", "--meta", "--json", "--out-path"))
    assert dump["glibc"]["outputs"]["dev"].startswith(str(nix_store.store_dir))  # the real shape, Nix 2.8
    # a second package named like the app (another nixpkgs revision, a fork): never matched
    dump["fork.weather"] = {**dump["app"], "outputs": {"out": str(nix_store.store_dir) + "/" + "0" * 32 + "-weather-0.0.1"},
                            "meta": {**dump["app"]["meta"], "license": {"spdxId": "GPL-3.0-only", "fullName": "GPL 3"}}}
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps(dump))
    _, bom = _sbom(nix_store, tmp_path, str(nix_store.results["app"]), "--meta", str(meta))
    by = _by_name(bom)
    app = by[("weather-0.0.1", "out")]
    assert "GPL" not in json.dumps(app.get("licenses")) and "MIT" in " ".join(_licences(app))
    assert cdx_property(app, "nix:meta_source") == "meta-file:out-path"
    assert cdx_property(by[("glibc-2.40-66", "out")], "nix:meta_source") == "meta-file:out-path"
    # build time: the fetches and the modules tree are outputs of no entry
    (tmp_path / "b").mkdir()
    _, bt = _sbom(nix_store, tmp_path / "b", str(nix_store.results["app"]), "--buildtime", "--meta", str(meta))
    for component in cdx_components(bt):
        path = cdx_property(component, "nix:store_path")
        if path.endswith(("-glibc-2.40.tar.xz", "-weather-0.0.1-go-modules")):
            assert "cpe" not in component and not component.get("licenses"), path


def test_meta_file_without_output_paths_needs_the_names_flag(nix_store, tmp_path):
    meta = FIXTURES / "meta.json"  # made without --out-path: every output is null
    run = run_sbomgen(str(nix_store.results["app"]), "--meta", str(meta), "--spdx", str(tmp_path / "x.json"), env=nix_store.env)
    assert_one_line_error(run, 10, "no output paths", "--out-path", "--meta-match-names")
    _, bom = _sbom(nix_store, tmp_path, str(nix_store.results["app"]), "--buildtime", "--meta", str(meta), "--meta-match-names")
    matched = [c for c in cdx_components(bom) if c.get("licenses") or c.get("cpe")]
    assert matched and all(cdx_property(c, "nix:meta_source") == "meta-file:name" for c in matched)
    # exact names only: no pname guess onto the tarball or the vendored tree
    for component in cdx_components(bom):
        path = cdx_property(component, "nix:store_path")
        if path.endswith(("-glibc-2.40.tar.xz", "-weather-0.0.1-go-modules", "-sqlite-autoconf-3460000.tar.gz")):
            assert "cpe" not in component and not component.get("licenses"), path


# --- item 6: the fixture is nixpkgs-shaped and meta changes no derivation ----------------------


def test_fixture_meta_is_nixpkgs_shaped_and_not_in_any_derivation(nix_store):
    expr = (f"let w = import {WEATHER} {{ }}; in {{ gcc = w.gcc.meta.license; tz = w.tzdata.meta.license; "
            "boot = w.bootstrap.meta.license; glibcDev = w.glibc.dev.meta.identifiers.cpeParts; "
            "maint = w.sqlite.meta.maintainers; noMeta = w.goModules ? meta; srcMeta = w.srcs.glibc ? meta; "
            "inDrv = w.app.drvAttrs ? meta; }")
    data = json.loads(nix_store.run("nix-instantiate", "--eval", "--strict", "--json", "--expr", expr))
    assert [lic["spdxId"] for lic in data["gcc"]] == ["GPL-3.0-or-later", "GCC-exception-3.1"]  # an exception as a licence
    assert [lic.get("spdxId") for lic in data["tz"]] == ["BSD-3-Clause", None]  # a list, one without an SPDX id
    assert data["boot"]["free"] is False  # unfree
    assert data["glibcDev"]["vendor"] == "gnu" and data["glibcDev"]["update"] == "*"  # every output carries meta
    assert {"name", "email", "github"} <= set(data["maint"][0])
    assert data["noMeta"] is False and data["srcMeta"] is False and data["inDrv"] is False
    for name in ("app", "glibc", "sqlite"):  # the builder never sees meta
        drv = Path(nix_store.instantiate(name).split("!")[0]).read_text()  # ATerm: env entries are ("NAME","VALUE")
        assert '("meta",' not in drv and '("pname",' in drv if name != "app" else '("meta",' not in drv


# --- properties: what sbomgen reads from an evaluation or an attribute path never crashes it ------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=40))
def test_any_attribute_path_is_read_or_refused(text):
    from sbomgen.errors import SbomgenError
    from sbomgen.nix.evaluate import split_attr_path

    try:
        parts = split_attr_path(text)
    except SbomgenError:
        return
    assert all(isinstance(p, str) for p in parts)


@settings(max_examples=200, deadline=None)
@given(JSON | st.fixed_dictionaries({"drvPath": st.text(max_size=8), "outputPath": st.text(max_size=8),
                                     "outputName": st.text(max_size=4), "outputs": JSON, "outputNames": JSON,
                                     "packages": st.dictionaries(st.text(max_size=12), JSON, max_size=4)}))
def test_any_evaluation_result_is_read_or_refused(data):
    from sbomgen.errors import SbomgenError
    from sbomgen.graph.meta import evaluated_meta
    from sbomgen.nix.evaluate import ExpressionTarget, _parse

    try:
        evaluation = _parse(ExpressionTarget(file="/x.nix"), data, 0.0)
    except SbomgenError:
        return
    assert evaluation.output_names
    evaluated_meta(evaluation.packages)  # whatever meta holds: a Meta or none, never an exception
