"""The direct SPDX JSON writer gives, byte for byte, what spdx-tools' model and converter give."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sbomgen.formats.context import DocumentContext
from sbomgen.formats.spdx import build_spdx, render_spdx, render_spdx_json
from sbomgen.graph.closure import buildtime_graph, runtime_graph
from sbomgen.graph.meta import apply_meta, load_meta
from sbomgen.nix.store import NixStore

META = Path(__file__).resolve().parents[2] / "fixtures" / "meta.json"
CONTEXT = DocumentContext(datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), uuid.UUID(int=42), True)


@pytest.mark.nix
@pytest.mark.parametrize("walk", [runtime_graph, buildtime_graph])
@pytest.mark.parametrize("with_meta", [False, True])
@pytest.mark.parametrize("target", ["app", "entrypoint", "glibc-dev"])
def test_direct_writer_equals_spdx_tools(nix_store, walk, with_meta, target):
    store = NixStore(str(nix_store.store_dir), str(nix_store.state_dir))
    graph = walk(store, os.path.realpath(nix_store.results[target]), None)
    if with_meta:
        apply_meta(graph, load_meta(META), match_names=True)
    assert render_spdx_json(graph, CONTEXT) == render_spdx(build_spdx(graph, CONTEXT), "json").encode()


@pytest.mark.nix
def test_direct_writer_equals_spdx_tools_for_images(nix_store, tmp_path):
    from sbomgen.sbom import load_image_graph
    from tests.helpers import run_sbomgen

    layout = tmp_path / "w.oci"
    run = run_sbomgen("image", str(nix_store.results["app"]), "--contents", str(nix_store.results["cacert"]), "-o", str(layout), env=nix_store.env)
    assert run.code == 0, run.stderr
    os.environ.update(nix_store.env)
    graph = load_image_graph(f"oci:{layout}")
    assert render_spdx_json(graph, CONTEXT) == render_spdx(build_spdx(graph, CONTEXT), "json").encode()
