"""sbomgen diff / rebuild on real nix-built pairs: each test asserts the exact kinds reported."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from tests.conftest import make_store, require_nix
from tests.helpers import run_sbomgen, schema_errors

pytestmark = pytest.mark.nix

REPRO = Path(__file__).resolve().parents[2] / "fixtures" / "repro.nix"
PAIRS = ("perms", "tarPerms", "stampDir", "tarOrder", "gz", "oci")


@pytest.fixture(scope="module")
def repro(tmp_path_factory):
    require_nix()
    store = make_store(tmp_path_factory.mktemp("repro"))
    built = {}
    for name in PAIRS:
        for side in ("a", "b"):
            store.run("nix-build", str(REPRO), "-A", f"{name}.{side}", "-o", str(store.root / f"{name}-{side}"))
            built[f"{name}-{side}"] = store.root / f"{name}-{side}"
    for name in ("reproducible", "stamp"):
        store.run("nix-build", str(REPRO), "-A", name, "-o", str(store.root / name))
        built[name] = store.root / name
    store.results = built
    return store


def _diff(store, left: str | Path, right: str | Path, *extra: str) -> tuple[int, dict, str]:
    run = run_sbomgen("diff", str(left), str(right), "--json", "-", *extra, env=store.env)
    assert run.code in (0, 1), run.stderr
    report = json.loads(run.stdout)
    assert schema_errors("sbomgen-diff-report-v1", report) == []
    return run.code, report, run.stderr


def _kinds(report: dict) -> list[tuple[str, str, str | None]]:
    return [(d["path"], d["kind"], d["cause"]) for d in report["differences"]]


def test_identical_store_paths(repro):
    code, report, _ = _diff(repro, repro.results["reproducible"], repro.results["reproducible"])
    assert code == 0 and report["identical"] and report["differences"] == []
    assert report["facts"]["left_nar_sha256"] == report["facts"]["right_nar_sha256"]


def test_permissions_only(repro):
    code, report, _ = _diff(repro, repro.results["perms-a"], repro.results["perms-b"])
    assert code == 1
    assert _kinds(report) == [("run", "mode", "permissions")]
    assert report["differences"][0]["before"] == "0o555" and report["differences"][0]["after"] == "0o444"


def test_permissions_inside_tar(repro):
    _, report, _ = _diff(repro, repro.results["tarPerms-a"] / "data.tar", repro.results["tarPerms-b"] / "data.tar")
    assert _kinds(report) == [("./config", "mode", "permissions")]


def test_timestamp_in_file(repro):
    _, report, _ = _diff(repro, repro.results["stampDir-a"], repro.results["stampDir-b"])
    assert _kinds(report) == [("BUILDINFO", "content", "timestamp")]
    diff = report["differences"][0]
    assert diff["before"] == "built on 2023-11-14T22:13:20Z" and diff["after"] == "built on 2023-11-14T23:13:20Z"
    assert "+built on 2023-11-14T23:13:20Z" in diff["detail"]


def test_tar_order_only(repro):
    _, report, _ = _diff(repro, repro.results["tarOrder-a"] / "data.tar", repro.results["tarOrder-b"] / "data.tar")
    assert _kinds(report) == [(".", "order", "ordering")]
    assert report["differences"][0]["before"] == "one, two, three"


def test_tar_inside_store_paths_is_recursed(repro):
    """Comparing the two store paths descends into the tar they hold, like diffoscope."""
    _, report, _ = _diff(repro, repro.results["tarOrder-a"], repro.results["tarOrder-b"])
    assert _kinds(report) == [("data.tar/", "order", "ordering")]


def test_gzip_mtime_only(repro):
    _, report, _ = _diff(repro, repro.results["gz-a"] / "data.tar.gz", repro.results["gz-b"] / "data.tar.gz")
    assert _kinds(report) == [(". (gzip header mtime)", "gzip-header", "timestamp")]
    assert (report["differences"][0]["before"], report["differences"][0]["after"]) == ("5", "9")


def test_oci_layouts_differing_in_created(repro):
    _, report, _ = _diff(repro, "oci:" + str(repro.results["oci-a"]), "oci:" + str(repro.results["oci-b"]))
    assert report["kind"] == "oci-layout"
    kinds = _kinds(report)
    assert ("config:/created", "json", "timestamp") in kinds
    assert ("config:/history/0/created", "json", "timestamp") in kinds
    assert {k for _, k, _ in kinds} == {"json", "digest"}
    assert report["causes"] == {"timestamp": len(kinds)}
    # plain directories that are layouts are recognised too
    _, plain, _ = _diff(repro, repro.results["oci-a"], repro.results["oci-b"])
    assert _kinds(plain) == kinds


def test_oci_layer_difference_reaches_files(repro, tmp_path):
    """Rewrite one layer file in a copy of the layout: the report names the file in the layer."""
    copy = _copy_layout(repro.results["oci-a"], tmp_path / "edited", motd=b"welcome to the other image\n")
    _, report, _ = _diff(repro, repro.results["oci-a"], copy)
    kinds = _kinds(report)
    assert ("layer 0", "digest", None) in kinds or any(k == "digest" and p == "layer 0" for p, k, _ in kinds)
    assert any(p.endswith("/./etc/motd") and k == "content" for p, k, _ in kinds), kinds


def test_max_differences_caps_output(repro):
    code, report, _ = _diff(repro, repro.results["oci-a"], repro.results["oci-b"], "--max-differences", "1")
    assert code == 1 and len(report["differences"]) == 1 and report["differences_total"] > 1


def test_human_output(repro):
    run = run_sbomgen("diff", str(repro.results["stampDir-a"]), str(repro.results["stampDir-b"]), env=repro.env)
    assert run.code == 1
    lines = run.stdout.splitlines()
    assert lines[0].startswith("DIFFERENT: ") and "(timestamp: 1)" in lines[0]
    assert "  BUILDINFO" in lines and any(line.strip().startswith("content [timestamp]:") for line in lines)
    run = run_sbomgen("diff", str(repro.results["reproducible"]), str(repro.results["reproducible"]), env=repro.env)
    assert run.code == 0 and run.stdout.startswith("IDENTICAL: ")


def test_deterministic_report(repro):
    first = run_sbomgen("diff", str(repro.results["oci-a"]), str(repro.results["oci-b"]), "--json", "-", env=repro.env)
    second = run_sbomgen("diff", str(repro.results["oci-a"]), str(repro.results["oci-b"]), "--json", "-", env=repro.env)
    assert first.stdout == second.stdout


@pytest.mark.parametrize("case", ["missing", "truncated-gzip", "not-an-image", "truncated-tar"])
def test_bad_input_exits_2(repro, tmp_path, case):
    good = repro.results["gz-a"] / "data.tar.gz"
    if case == "missing":
        args = [str(tmp_path / "nope"), str(good)]
    elif case == "truncated-gzip":
        bad = tmp_path / "bad.tar.gz"
        bad.write_bytes(good.read_bytes()[:40])
        args = [str(bad), str(good)]
    elif case == "not-an-image":
        (tmp_path / "dir").mkdir()
        args = ["oci:" + str(tmp_path / "dir"), "oci:" + str(repro.results["oci-a"])]
    else:
        tar = repro.results["tarOrder-a"] / "data.tar"
        bad = tmp_path / "bad.tar"
        bad.write_bytes(tar.read_bytes()[:700])
        args = [str(bad), str(tar)]
    run = run_sbomgen("diff", *args, env=repro.env)
    assert run.code == 2, (run.code, run.stdout, run.stderr)
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("sbomgen: error: ") and "Traceback" not in run.stderr


def test_corrupt_blob_is_detected(repro, tmp_path):
    copy = _copy_layout(repro.results["oci-a"], tmp_path / "corrupt")
    index = json.loads((copy / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((copy / "blobs" / "sha256" / manifest_digest).read_text())
    layer = copy / "blobs" / "sha256" / manifest["layers"][0]["digest"].split(":")[1]
    data = bytearray(layer.read_bytes())
    data[-12] ^= 0xFF  # inside the gzip trailer/CRC area: the bytes no longer hash to the digest
    layer.write_bytes(bytes(data))
    run = run_sbomgen("diff", str(copy), str(repro.results["oci-a"]), env=repro.env)
    assert run.code == 2 and ("digest mismatch" in run.stderr or "corrupt" in run.stderr), run.stderr


def test_rebuild_reproducible(repro):
    run = run_sbomgen("rebuild", str(repro.results["reproducible"]), env=repro.env)
    assert run.code == 0, run.stderr
    assert run.stdout.startswith("REPRODUCIBLE reproducible-1.0")


def test_rebuild_finds_timestamp(repro):
    run = run_sbomgen("rebuild", str(repro.results["stamp"]), "--json", "-", env=repro.env)
    assert run.code == 1, run.stderr
    report = json.loads(run.stdout)
    assert schema_errors("sbomgen-rebuild-report-v1", report) == []
    (drv,) = report["derivations"]
    assert drv["status"] == "differs"
    (output,) = drv["outputs"]
    assert [(d["path"], d["kind"], d["cause"]) for d in output["differences"]] == [("share/built-at", "content", "timestamp")]
    assert output["right"].endswith(".check")
    assert not os.path.exists(output["right"]), "the .check copy is removed unless --keep-check"


def test_rebuild_recursive_summary(scratch_store):
    result = scratch_store.build("app", "result")
    run = run_sbomgen("rebuild", "--recursive", str(result), "--json", "-", env=scratch_store.env)
    assert run.code == 0, run.stderr
    report = json.loads(run.stdout)
    summary = report["summary"]
    drv = scratch_store.query_deriver(os.path.realpath(result))
    closure = [p for p in scratch_store.query_requisites(drv) if p.endswith(".drv")]
    assert summary["derivations"] == len(closure)
    assert summary["skipped"] == 5  # the five fixed-output fetches of the weather closure
    assert summary["reproducible"] == len(closure) - 5 and summary["reproducible_percent"] == 100.0
    statuses = {d["name"]: d["status"] for d in report["derivations"]}
    assert statuses["weather-0.0.1"] == "reproducible" and statuses["glibc-2.40.tar.xz"] == "skipped"


def test_rebuild_unbuilt_and_bad_input(scratch_store, tmp_path):
    drv = scratch_store.run("nix-instantiate", str(REPRO), "-A", "reproducible").strip()
    run = run_sbomgen("rebuild", drv, env=scratch_store.env)
    assert run.code == 0 and run.stdout.startswith("NOT-BUILT")
    run = run_sbomgen("rebuild", str(tmp_path), env=scratch_store.env)
    assert run.code == 2 and "not inside" in run.stderr


def _copy_layout(src: Path, dest: Path, motd: bytes | None = None) -> Path:
    """A writable copy of an OCI layout, optionally with /etc/motd changed in its only layer."""
    shutil.copytree(src, dest)
    for dirpath, _dirs, files in os.walk(dest):
        os.chmod(dirpath, 0o755)
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o644)
    if motd is None:
        return dest
    import hashlib
    import io

    blobs = dest / "blobs" / "sha256"
    index = json.loads((dest / "index.json").read_text())
    manifest_path = blobs / index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads(manifest_path.read_text())
    layer_path = blobs / manifest["layers"][0]["digest"].split(":")[1]
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer_path.read_bytes()))) as src_tar, tarfile.open(fileobj=out, mode="w") as dst_tar:
        for member in src_tar.getmembers():
            data = src_tar.extractfile(member).read() if member.isreg() else None
            if member.name.endswith("etc/motd"):
                data = motd
                member.size = len(motd)
            dst_tar.addfile(member, io.BytesIO(data) if data is not None else None)
    blob = gzip.compress(out.getvalue(), mtime=0)
    digest = hashlib.sha256(blob).hexdigest()
    (blobs / digest).write_bytes(blob)
    manifest["layers"][0]["digest"] = f"sha256:{digest}"
    manifest["layers"][0]["size"] = len(blob)
    data = json.dumps(manifest).encode()
    mdigest = hashlib.sha256(data).hexdigest()
    (blobs / mdigest).write_bytes(data)
    index["manifests"][0]["digest"] = f"sha256:{mdigest}"
    index["manifests"][0]["size"] = len(data)
    (dest / "index.json").write_text(json.dumps(index))
    return dest


def _tar_dir(src: Path, dest: Path) -> Path:
    """An oci-archive: the layout directory as a tar."""
    with tarfile.open(dest, "w") as tar:
        for child in sorted(src.iterdir()):
            tar.add(child, arcname=child.name)
    return dest


def test_oci_archives(repro, tmp_path):
    a = _tar_dir(repro.results["oci-a"], tmp_path / "a.tar")
    b = _tar_dir(repro.results["oci-b"], tmp_path / "b.tar")
    _, report, _ = _diff(repro, "oci-archive:" + str(a), "oci-archive:" + str(b))
    assert report["kind"] == "oci-archive"
    _, layouts, _ = _diff(repro, repro.results["oci-a"], repro.results["oci-b"])
    assert _kinds(report) == _kinds(layouts)


def _docker_archive(dest: Path, created: str, motd: bytes, gzip_whole: bool = False) -> Path:
    """A docker-archive in the shape dockerTools writes: manifest.json, config, <id>/layer.tar."""
    import hashlib
    import io

    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        info = tarfile.TarInfo("etc/motd")
        info.size, info.mtime = len(motd), 1
        tar.addfile(info, io.BytesIO(motd))
    layer_bytes = layer.getvalue()
    layer_id = hashlib.sha256(layer_bytes).hexdigest()
    config = json.dumps({"created": created, "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_id}"]}}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": ["weather:latest"], "Layers": [f"{layer_id}/layer.tar"]}]).encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in ((config_name, config), (f"{layer_id}/layer.tar", layer_bytes), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1
            tar.addfile(info, io.BytesIO(data))
    dest.write_bytes(gzip.compress(raw.getvalue(), mtime=0) if gzip_whole else raw.getvalue())
    return dest


def test_docker_archives(repro, tmp_path):
    a = _docker_archive(tmp_path / "a.tar.gz", "2024-01-01T00:00:00Z", b"hello\n", gzip_whole=True)
    b = _docker_archive(tmp_path / "b.tar.gz", "2024-01-02T00:00:00Z", b"hello\n", gzip_whole=True)
    _, report, _ = _diff(repro, a, b)
    assert report["kind"] == "docker-archive"
    assert ("config:/created", "json", "timestamp") in _kinds(report)
    c = _docker_archive(tmp_path / "c.tar", "2024-01-01T00:00:00Z", b"hello, world\n")
    _, report, _ = _diff(repro, "docker-archive:" + str(a), "docker-archive:" + str(c))
    assert any(p.endswith("/etc/motd") and k == "content" for p, k, _ in _kinds(report)), _kinds(report)


def test_image_kinds_compared_across_formats(repro, tmp_path):
    archive = _tar_dir(repro.results["oci-a"], tmp_path / "a.tar")
    code, report, _ = _diff(repro, repro.results["oci-a"], archive)
    # the same image in another container: only the container differs (issue 12: identical
    # means the same bytes, so a layout and an archive are never identical)
    assert code == 1 and report["kind"] == "oci-layout vs oci-archive"
    assert _kinds(report) == [(".", "type", None)]
    assert (report["differences"][0]["before"], report["differences"][0]["after"]) == ("oci-layout", "oci-archive")


@pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd not installed")
def test_zstd_tar_against_gzip_of_the_same_tar(repro, tmp_path):
    import subprocess

    tar = repro.results["tarOrder-a"] / "data.tar"
    zst = tmp_path / "data.tar.zst"
    subprocess.run(["zstd", "-q", "-o", str(zst), str(tar)], check=True)
    gz = tmp_path / "data.tar.gz"
    gz.write_bytes(gzip.compress(tar.read_bytes(), mtime=0))
    _, report, _ = _diff(repro, zst, gz)
    assert _kinds(report) == [(".", "compression", "compression")]
    _, same, _ = _diff(repro, zst, tar)
    assert _kinds(same) == [(".", "compression", "compression")]


@pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd not installed")
def test_zstd_sniff_of_a_large_tar_is_not_corruption(repro, tmp_path):
    """Sniffing 512 bytes closes the pipe while zstd still writes: that is not an error."""
    import subprocess

    big = tmp_path / "big.tar"
    with tarfile.open(big, "w") as tar:
        payload = os.urandom(4 << 20)
        for index in range(3):
            info = tarfile.TarInfo(f"file{index}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    zst = tmp_path / "big.tar.zst"
    subprocess.run(["zstd", "-q", "-o", str(zst), str(big)], check=True)
    for _ in range(5):
        _, report, _ = _diff(repro, zst, big)
        assert _kinds(report) == [(".", "compression", "compression")]
    truncated = tmp_path / "cut.tar.zst"
    truncated.write_bytes(zst.read_bytes()[: len(zst.read_bytes()) // 2])
    run = run_sbomgen("diff", str(truncated), str(big), env=repro.env)
    assert run.code == 2 and "zstd" in run.stderr, run.stderr
