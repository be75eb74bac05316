"""sbomgen graph / why / --format table: pictures and explanations of the fixture graph."""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.helpers import run_sbomgen

pytestmark = pytest.mark.nix

SVG = "{http://www.w3.org/2000/svg}"


def _need_dot():
    if shutil.which("dot") is None:
        if os.environ.get("CI"):
            pytest.fail("graphviz (dot) must be installed in CI (.ci/run)")
        pytest.skip("graphviz not installed")


def _svg_labels(path: Path) -> dict[str, str]:
    """node tooltip (the store path) -> its label text, from the SVG graphviz wrote."""
    root = ElementTree.parse(path).getroot()
    labels = {}
    for group in root.iter(f"{SVG}g"):
        if group.get("class") != "node":
            continue
        texts = [t.text for t in group.iter(f"{SVG}text")]
        anchor = next(group.iter(f"{SVG}a"), None)
        tooltip = anchor.get("{http://www.w3.org/1999/xlink}title") if anchor is not None else None
        labels[tooltip] = " ".join(texts)
    return labels


def test_svg_has_every_runtime_component(nix_store, tmp_path):
    _need_dot()
    out = tmp_path / "g.svg"
    run = run_sbomgen("graph", str(nix_store.results["app"]), "-o", str(out), env=nix_store.env)
    assert run.code == 0, run.stderr
    labels = _svg_labels(out)
    assert set(labels) == nix_store.query_requisites(os.path.realpath(nix_store.results["app"]))
    assert {text for text in labels.values()} == {"weather 0.0.1", "glibc 2.40-66", "sqlite 3.46.0", "nss-cacert 3.107", "tzdata"}


def test_png_and_dot(nix_store, tmp_path):
    _need_dot()
    png = tmp_path / "g.png"
    run = run_sbomgen("graph", "--buildtime", str(nix_store.results["app"]), "-o", str(png), env=nix_store.env)
    assert run.code == 0, run.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 100 and height > 100
    run = run_sbomgen("graph", "--buildtime", str(nix_store.results["app"]), "-o", "-", env=nix_store.env)
    assert run.code == 0 and run.stdout.startswith("digraph sbomgen {")
    assert "style=dashed" in run.stdout and 'label="go\\n1.23.4"' in run.stdout


def test_highlight_marks_the_paths_to_the_root(nix_store, tmp_path):
    run = run_sbomgen("graph", str(nix_store.results["app"]), "--highlight", "glibc", "-o", "-", env=nix_store.env)
    assert run.code == 0, run.stderr
    lines = run.stdout.splitlines()
    marked = [line for line in lines if "#d7263d" in line]
    # glibc, and weather and sqlite on its paths; edges weather->glibc, weather->sqlite, sqlite->glibc
    assert sum("->" not in line for line in marked) == 3
    assert sum("->" in line for line in marked) == 3
    assert not any("nss-cacert" in line for line in marked)


def test_max_nodes_says_what_was_cut(nix_store, tmp_path):
    run = run_sbomgen("graph", "--buildtime", str(nix_store.results["app"]), "--max-nodes", "4", "-o", str(tmp_path / "g.dot"), env=nix_store.env)
    assert run.code == 0, run.stderr
    assert "drew 4 of 18 nodes" in run.stderr and "raise --max-nodes or lower --depth" in run.stderr
    assert (tmp_path / "g.dot").read_text().count("tooltip=") == 4


def test_bad_graph_format(nix_store, tmp_path):
    run = run_sbomgen("graph", str(nix_store.results["app"]), "-o", str(tmp_path / "g.pdf"), env=nix_store.env)
    assert run.code == 8 and "use .svg, .png or .dot" in run.stderr and not (tmp_path / "g.pdf").exists()


def test_why_prints_exact_chains(nix_store):
    run = run_sbomgen("why", str(nix_store.results["app"]), "glibc", env=nix_store.env)
    assert run.code == 0, run.stderr
    assert run.stdout.splitlines()[1:] == [
        "  weather 0.0.1 -> glibc 2.40-66",
        "  weather 0.0.1 -> sqlite 3.46.0 -> glibc 2.40-66",
    ]
    assert "through 2 chain(s)" in run.stdout
    run = run_sbomgen("why", str(nix_store.results["entrypoint"]), "tzdata", env=nix_store.env)
    assert run.stdout.splitlines()[1:] == ["  weather-entrypoint -> weather 0.0.1 -> tzdata"]


def test_why_buildtime_and_absent(nix_store):
    run = run_sbomgen("why", "--buildtime", str(nix_store.results["app"]), "go", "--max-chains", "1", env=nix_store.env)
    assert run.code == 0 and run.stdout.splitlines()[1] == "  weather 0.0.1 -> go 1.23.4"
    run = run_sbomgen("why", str(nix_store.results["app"]), "openssl", env=nix_store.env)
    assert run.code == 1 and "openssl is not in the runtime closure" in run.stdout


def test_table_format(nix_store):
    meta = Path(__file__).resolve().parents[2] / "fixtures" / "meta.json"
    run = run_sbomgen(str(nix_store.results["app"]), "--format", "table", "--meta", str(meta), "--meta-match-names", env=nix_store.env)
    assert run.code == 0, run.stderr
    rows = [line for line in run.stdout.splitlines() if line.startswith("│")]
    names = [row.split("│")[1].strip() for row in rows if row.split("│")[1].strip()]
    assert names == ["weather", "glibc", "nss-cacert", "sqlite", "tzdata"]
    assert any("LGPL-2.1-or-later" in row for row in rows)
    run = run_sbomgen(str(nix_store.results["app"]), "--format", "yaml", env=nix_store.env)
    assert run.code == 8


def test_summary_reports_missing_metadata(nix_store, tmp_path):
    run = run_sbomgen(str(nix_store.results["app"]), "--csv", str(tmp_path / "x.csv"), env=nix_store.env)
    assert "missing metadata: 5 without a licence, 5 without a description (give --meta FILE" in run.stdout
