"""sbomgen image (produce) and image SBOMs (read), judged by skopeo and umoci."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.helpers import cdx_property, db_nar_hashes, run_sbomgen, schema_errors

pytestmark = pytest.mark.nix


def _image(store, tmp_path: Path, name: str, *args: str, app: str = "app") -> Path:
    out = tmp_path / name
    run = run_sbomgen("image", str(store.results[app]), "-o", str(out), *args, env=store.env)
    assert run.code == 0, run.stderr
    return out


def _weather(store, tmp_path: Path, name: str = "weather.oci", *extra: str) -> Path:
    return _image(store, tmp_path, name, "--name", "weather", "--tag", "v0.0.1", "--contents", str(store.results["cacert"]),
                  "--entrypoint", "bin/weather", "--port", "8080", "--env", "TZ=UTC", *extra)


def _layout(path: Path) -> tuple[dict, dict, dict]:
    index = json.loads((path / "index.json").read_text())
    desc = index["manifests"][0]
    manifest = json.loads((path / "blobs" / "sha256" / desc["digest"][7:]).read_text())
    config = json.loads((path / "blobs" / "sha256" / manifest["config"]["digest"][7:]).read_text())
    return index, manifest, config


def _store_path_of_layer(layout: Path, digest: str) -> set[str]:
    with tarfile.open(layout / "blobs" / "sha256" / digest[7:], "r:gz") as tar:
        return {"/".join(m.name.split("/")[:len(m.name.split("/"))]) for m in tar.getmembers()}


def test_layout_is_deterministic(nix_store, tmp_path):
    env = {**nix_store.env, "SOURCE_DATE_EPOCH": "1700000000"}
    outs = []
    for name in ("a.oci", "b.oci"):
        run = run_sbomgen("image", str(nix_store.results["app"]), "-o", str(tmp_path / name), "--attach-sbom",
                          "--contents", str(nix_store.results["cacert"]), env=env)
        assert run.code == 0, run.stderr
        outs.append(tmp_path / name)
    files = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(outs[1]) for p in outs[1].rglob("*") if p.is_file())
    for rel in files:
        assert (outs[0] / rel).read_bytes() == (outs[1] / rel).read_bytes(), rel
    _, _, config = _layout(outs[0])
    assert config["created"] == "2023-11-14T22:13:20Z"


def test_config_and_layers(nix_store, tmp_path):
    layout = _weather(nix_store, tmp_path)
    index, manifest, config = _layout(layout)
    app = os.path.realpath(nix_store.results["app"])
    assert config["config"]["Entrypoint"] == [f"{app}/bin/weather"]
    assert config["config"]["ExposedPorts"] == {"8080/tcp": {}}
    assert config["config"]["Env"] == ["TZ=UTC"]
    assert config["created"] == "1970-01-01T00:00:01Z" and config["architecture"] == "amd64"
    closure = nix_store.query_requisites(app) | nix_store.query_requisites(os.path.realpath(nix_store.results["cacert"]))
    assert len(manifest["layers"]) == len(closure) + 1  # one per store path, plus the contents layer
    assert len(config["history"]) == len(manifest["layers"]) == len(config["rootfs"]["diff_ids"])
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "v0.0.1"
    # the most shared path (glibc, needed by everything) is the bottom layer; the app is above it
    bottom = manifest["layers"][0]["digest"]
    with tarfile.open(layout / "blobs" / "sha256" / bottom[7:], "r:gz") as tar:
        names = tar.getnames()
        assert any("glibc-2.40-66/lib/libc.so.6" in n for n in names)
        member = tar.getmember(next(n for n in names if n.endswith("libc.so.6")))
        assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (1, 0, 0, "", "")
        assert names == sorted(names, key=lambda n: n.split("/"))
    raw = (layout / "blobs" / "sha256" / bottom[7:]).read_bytes()
    assert raw[4:8] == b"\0\0\0\0" and not raw[3] & 0x08  # gzip: no mtime, no file name


def test_shared_library_layer_is_the_same_blob(nix_store, tmp_path):
    weather = _weather(nix_store, tmp_path)
    nginx = _image(nix_store, tmp_path, "nginx.oci", "--name", "nginx", "--entrypoint", "bin/nginx", app="nginx")
    glibc = os.path.realpath(nix_store.results["glibc"])

    def glibc_layer(layout: Path) -> str:
        _, manifest, _ = _layout(layout)
        for layer in manifest["layers"]:
            with tarfile.open(layout / "blobs" / "sha256" / layer["digest"][7:], "r:gz") as tar:
                if any(n.endswith(os.path.basename(glibc) + "/lib/libc.so.6") for n in tar.getnames()):
                    return layer["digest"]
        raise AssertionError("no glibc layer")

    assert glibc_layer(weather) == glibc_layer(nginx)
    _, wm, _ = _layout(weather)
    _, nm, _ = _layout(nginx)
    assert wm["layers"][-1]["digest"] != nm["layers"][-1]["digest"]


def test_max_layers_groups_least_popular(nix_store, tmp_path):
    layout = _image(nix_store, tmp_path, "few.oci", "--max-layers", "3")
    _, manifest, _ = _layout(layout)
    assert len(manifest["layers"]) == 3
    with tarfile.open(layout / "blobs" / "sha256" / manifest["layers"][-1]["digest"][7:], "r:gz") as tar:
        roots = {n.split("/")[-1] for n in tar.getnames() if n.count("/") == len(str(nix_store.store_dir).strip("/").split("/"))}
    assert any("weather-0.0.1" in r for r in roots) and len(roots) >= 2


def test_skopeo_and_umoci_accept(nix_store, tmp_path):
    if not shutil.which("skopeo") or not shutil.which("umoci"):
        if os.environ.get("CI"):
            pytest.fail("skopeo and umoci must be installed in CI (.ci/run)")
        pytest.skip("skopeo/umoci not installed")
    layout = _weather(nix_store, tmp_path, "weather.oci", "--attach-sbom")
    inspect = json.loads(subprocess.run(["skopeo", "inspect", f"oci:{layout}:v0.0.1"], capture_output=True, text=True, check=True).stdout)
    _, manifest, _ = _layout(layout)
    assert inspect["Layers"] == [layer["digest"] for layer in manifest["layers"]]
    subprocess.run(["umoci", "unpack", "--rootless", "--image", f"{layout}:v0.0.1", str(tmp_path / "bundle")], check=True, capture_output=True)
    rootfs = tmp_path / "bundle" / "rootfs"
    app = os.path.realpath(nix_store.results["app"])
    assert (rootfs / app.lstrip("/") / "bin" / "weather").is_file()
    assert os.readlink(rootfs / "etc/ssl/certs/ca-bundle.crt").endswith("nss-cacert-3.107/etc/ssl/certs/ca-bundle.crt")
    target = tmp_path / "copied.tar"
    subprocess.run(["skopeo", "copy", f"oci:{layout}:v0.0.1", f"docker-archive:{target}:weather:v0.0.1"], check=True, capture_output=True)
    run = run_sbomgen(f"docker-archive:{target}", "--cdx", "-", env=nix_store.env)
    assert run.code == 0, run.stderr


def test_archive_formats(nix_store, tmp_path):
    for fmt in ("oci-archive", "docker-archive"):
        out = _weather(nix_store, tmp_path, f"w.{fmt}.tar", "--format", fmt)
        with tarfile.open(out) as tar:
            names = tar.getnames()
        assert ("index.json" in names) if fmt == "oci-archive" else ("manifest.json" in names)
        if shutil.which("skopeo"):
            subprocess.run(["skopeo", "inspect", f"{fmt}:{out}"], check=True, capture_output=True)


def test_referrers(nix_store, tmp_path):
    statement = tmp_path / "p.json"
    run = subprocess.run(["python3", "-m", "sbomgen.cli.provenance", str(nix_store.results["app"]), "-o", str(statement)],
                         env={**os.environ, **nix_store.env}, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    layout = _weather(nix_store, tmp_path, "weather.oci", "--attach-sbom", "--attach-provenance", str(statement), "--referrers", "index")
    index, _, _ = _layout(layout)
    image = index["manifests"][0]
    referrers = {m["artifactType"]: m for m in index["manifests"][1:]}
    assert set(referrers) == {"application/spdx+json", "application/vnd.cyclonedx+json", "application/vnd.in-toto+json"}
    for artifact_type, desc in referrers.items():
        manifest = json.loads((layout / "blobs" / "sha256" / desc["digest"][7:]).read_text())
        assert manifest["subject"] == {"mediaType": image["mediaType"], "digest": image["digest"], "size": image["size"]}
        assert manifest["artifactType"] == artifact_type and manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
        payload = (layout / "blobs" / "sha256" / manifest["layers"][0]["digest"][7:]).read_bytes()
        assert hashlib.sha256(payload).hexdigest() == manifest["layers"][0]["digest"][7:]
        document = json.loads(payload)
        if artifact_type == "application/spdx+json":
            assert schema_errors("spdx-2.3", document) == []
        elif artifact_type == "application/vnd.cyclonedx+json":
            assert schema_errors("cyclonedx-1.6", document) == []
            assert cdx_property(document["metadata"]["component"], "oci:manifest_digest") == image["digest"]
        else:
            assert document["predicateType"] == "https://slsa.dev/provenance/v1"


def _sbom_paths(bom: dict) -> set[str]:
    return {cdx_property(c, "nix:store_path") for c in bom.get("components", [])}


def test_image_sbom_equals_runtime_closure(nix_store, tmp_path):
    layout = _weather(nix_store, tmp_path)
    for spec in (f"oci:{layout}", str(layout)):
        run = run_sbomgen(spec, "--cdx", "-", env=nix_store.env)
        assert run.code == 0, run.stderr
        bom = json.loads(run.stdout)
        expected = nix_store.query_requisites(os.path.realpath(nix_store.results["app"])) | nix_store.query_requisites(
            os.path.realpath(nix_store.results["cacert"]))
        assert _paths_ok(bom, expected)
    root = bom["metadata"]["component"]
    _, manifest, _ = _layout(layout)
    index, _, _ = _layout(layout)
    assert root["type"] == "container" and root["hashes"][0]["content"] == index["manifests"][0]["digest"][7:]
    assert (root["name"], root["version"]) == ("weather", "v0.0.1")
    assert int(cdx_property(root, "oci:files_outside_store")) >= 2
    db = db_nar_hashes(nix_store.db_path)
    for component in bom["components"]:
        path = cdx_property(component, "nix:store_path")
        assert component["hashes"][0]["content"] == db[path]  # recomputed from the layers, equal to Nix's
        assert cdx_property(component, "oci:layers").startswith("sha256:")
    weather = next(c for c in bom["components"] if c["name"] == "weather")
    deps = {d["ref"]: set(d.get("dependsOn", [])) for d in bom["dependencies"]}
    glibc = next(c for c in bom["components"] if c["name"] == "glibc")
    assert glibc["bom-ref"] in deps[weather["bom-ref"]]  # references found by scanning the image's files


def _paths_ok(bom: dict, expected: set[str]) -> bool:
    assert _sbom_paths(bom) == expected
    return True


def _dockertools_archive(store, dest: Path, paths: list[str]) -> Path:
    """A docker-archive the way dockerTools writes one: gzip'd, manifest.json, a layer.tar per path."""
    raw = io.BytesIO()
    layer_names, diff_ids = [], []
    with tarfile.open(fileobj=raw, mode="w") as archive:
        for path in sorted(paths):
            layer = io.BytesIO()
            with tarfile.open(fileobj=layer, mode="w") as tar:
                tar.add(path, arcname=path.lstrip("/"))
            data = layer.getvalue()
            digest = hashlib.sha256(data).hexdigest()
            info = tarfile.TarInfo(f"{digest}/layer.tar")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
            layer_names.append(f"{digest}/layer.tar")
            diff_ids.append(f"sha256:{digest}")
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
        config_name = hashlib.sha256(config).hexdigest() + ".json"
        for name, data in ((config_name, config), ("manifest.json", json.dumps([{"Config": config_name, "RepoTags": ["weather:latest"], "Layers": layer_names}]).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    dest.write_bytes(gzip.compress(raw.getvalue()))
    return dest


def test_dockertools_shaped_archive_with_and_without_local_store(nix_store, tmp_path):
    app = os.path.realpath(nix_store.results["app"])
    paths = sorted(nix_store.query_requisites(app))
    archive = _dockertools_archive(nix_store, tmp_path / "weather.tar.gz", paths)
    db = db_nar_hashes(nix_store.db_path)
    run = run_sbomgen(str(archive), "--cdx", "-", env=nix_store.env)
    assert run.code == 0, run.stderr
    bom = json.loads(run.stdout)
    assert _sbom_paths(bom) == set(paths)
    sqlite = next(c for c in bom["components"] if c["name"] == "sqlite")
    assert sqlite["version"] == "3.46.0" and cdx_property(sqlite, "nix:drv_path")  # enriched from the local store
    # another store: described from the image alone, same digests
    env = {**nix_store.env, "NIX_STORE_DIR": str(tmp_path / "other-store"), "NIX_STATE_DIR": str(tmp_path / "other-state")}
    run = run_sbomgen(str(archive), "--cdx", "-", env=env)
    assert run.code == 0, run.stderr
    bom = json.loads(run.stdout)
    assert _sbom_paths(bom) == set(paths)
    for component in bom["components"]:
        assert component["hashes"][0]["content"] == db[cdx_property(component, "nix:store_path")]
        assert cdx_property(component, "nix:described_from")
    glibc = next(c for c in bom["components"] if c["name"] == "glibc")
    assert glibc["version"] == "2.40-66"


def test_bad_images(nix_store, tmp_path):
    layout = _weather(nix_store, tmp_path)
    truncated = tmp_path / "t.tar"
    _image(nix_store, tmp_path, "full.tar", "--format", "oci-archive")
    truncated.write_bytes((tmp_path / "full.tar").read_bytes()[:3000])
    run = run_sbomgen(f"oci-archive:{truncated}", "--cdx", "-", env=nix_store.env)
    assert run.code == 15 and run.stderr.startswith("sbomgen: error: ") and "Traceback" not in run.stderr, run.stderr

    missing = tmp_path / "missing.oci"
    shutil.copytree(layout, missing)
    _, manifest, _ = _layout(missing)
    os.unlink(missing / "blobs" / "sha256" / manifest["layers"][1]["digest"][7:])
    run = run_sbomgen(f"oci:{missing}", "--cdx", "-", env=nix_store.env)
    assert run.code == 16 and "missing blob" in run.stderr, run.stderr

    corrupt = tmp_path / "corrupt.oci"
    shutil.copytree(layout, corrupt)
    _, manifest, _ = _layout(corrupt)
    blob = corrupt / "blobs" / "sha256" / manifest["layers"][1]["digest"][7:]
    os.chmod(blob, 0o644)
    data = bytearray(blob.read_bytes())
    data[-9] ^= 0xFF
    blob.write_bytes(bytes(data))
    run = run_sbomgen(f"oci:{corrupt}", "--cdx", "-", env=nix_store.env)
    assert run.code in (15, 16) and ("digest mismatch" in run.stderr or "corrupt" in run.stderr), run.stderr

    run = run_sbomgen(f"oci:{tmp_path}", "--cdx", "-", env=nix_store.env)
    assert run.code == 16 and "not an OCI image layout" in run.stderr
    run = run_sbomgen("image", str(nix_store.results["app"]), "--format", "zip", "-o", str(tmp_path / "x"), env=nix_store.env)
    assert run.code == 8 and not (tmp_path / "x").exists()


def test_blob_digest_mismatch_is_reported(nix_store, tmp_path):
    layout = _weather(nix_store, tmp_path)
    copy = tmp_path / "edited.oci"
    shutil.copytree(layout, copy)
    _, manifest, _ = _layout(copy)
    config = copy / "blobs" / "sha256" / manifest["config"]["digest"][7:]
    os.chmod(config, 0o644)
    config.write_text(config.read_text().replace('"amd64"', '"arm64"'))  # valid JSON, wrong digest
    run = run_sbomgen(f"oci:{copy}", "--cdx", "-", env=nix_store.env)
    assert run.code == 16 and "digest mismatch" in run.stderr and manifest["config"]["digest"] in run.stderr, run.stderr
    assert run.stdout == ""


def test_archive_cut_on_a_member_boundary_is_truncated(nix_store, tmp_path):
    """Cut exactly after a member: tarfile reads a shorter archive; it must still be 'truncated'."""
    full = _image(nix_store, tmp_path, "full.tar", "--format", "oci-archive")
    with tarfile.open(full) as tar:
        members = tar.getmembers()
    cut = members[len(members) // 2]
    data = full.read_bytes()[: cut.offset]  # ends right before a member header
    for name, blob in (("boundary.tar", data), ("mid.tar", full.read_bytes()[: cut.offset + 700])):
        path = tmp_path / name
        path.write_bytes(blob)
        run = run_sbomgen(f"oci-archive:{path}", "--cdx", "-", env=nix_store.env)
        assert run.code == 15 and "truncated" in run.stderr, (name, run.stderr)
