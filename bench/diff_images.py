"""Benchmark: `sbomgen diff` of two ~200 MB image tarballs, identical and differing in one file.

    python3 bench/diff_images.py [--size-mb 200] [--out bench/results/diff_images.json]

Writes docker-archives (the layout dockerTools and `docker save` use: manifest.json, config,
one uncompressed layer.tar per layer) of incompressible data into a temp dir, then times
`sbomgen diff` as a subprocess (wall time and peak RSS of the child), and diffoscope on the
same pairs when it is installed. Reports figures; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile

from measure import timed

LAYERS = 10


def _pseudo_random(seed: bytes, size: int) -> bytes:
    data = io.BytesIO()
    block = seed
    while data.tell() < size:
        block = hashlib.sha256(block).digest() * 2048  # 64 KiB, deterministic
        data.write(block)
    return data.getvalue()[:size]


def _layer(directory: str, index: int, size: int, tweak: bool, files: int) -> tuple[str, str]:
    """A layer tar of ``files`` files of pseudo-random bytes (a store path's worth), plus a README."""
    path = os.path.join(directory, f"layer{index}.tar")
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        payload = _pseudo_random(f"layer-{index}".encode(), size)
        step = len(payload) // files
        for number in range(files):
            chunk = payload[number * step : (number + 1) * step]
            info = tarfile.TarInfo(f"nix/store/{index:032d}-blob-{index}/share/f{number:05d}.bin")
            info.size, info.mtime, info.mode = len(chunk), 1, 0o444
            tar.addfile(info, io.BytesIO(chunk))
        text = f"layer {index}\n".encode() + (b"tweaked\n" if tweak else b"original\n")
        info = tarfile.TarInfo(f"nix/store/{index:032d}-blob-{index}/share/README")
        info.size, info.mtime, info.mode = len(text), 1, 0o444
        tar.addfile(info, io.BytesIO(text))
    with open(path, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    return path, digest


def make_archive(target: str, total_mb: int, tweak_layer: int | None, files: int = 1) -> None:
    work = tempfile.mkdtemp(prefix="bench-layers-")
    try:
        per_layer = total_mb * (1 << 20) // LAYERS
        layers = [_layer(work, i, per_layer, i == tweak_layer, files) for i in range(LAYERS)]
        config = {
            "architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:01Z",
            "config": {"Entrypoint": ["/bin/weather"]},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{d}" for _, d in layers]},
        }
        config_bytes = json.dumps(config, sort_keys=True).encode()
        config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
        manifest = [{"Config": config_name, "RepoTags": ["weather:bench"], "Layers": [f"{d}/layer.tar" for _, d in layers]}]
        with tarfile.open(target, "w") as tar:
            for name, data in (("manifest.json", json.dumps(manifest).encode()), (config_name, config_bytes)):
                info = tarfile.TarInfo(name)
                info.size, info.mtime = len(data), 1
                tar.addfile(info, io.BytesIO(data))
            for path, digest in layers:
                tar.add(path, arcname=f"{digest}/layer.tar", filter=lambda i: (setattr(i, "mtime", 1), i)[1])
    finally:
        shutil.rmtree(work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--files", type=int, default=2000, help="files per layer in the many-files scenario")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "diff_images.json"))
    args = parser.parse_args()
    results = {"layers": LAYERS, "runs": []}
    diffoscope = shutil.which("diffoscope")
    if not diffoscope:
        results["diffoscope"] = "not installed (apt-get install diffoscope-minimal)"
    sbomgen = [sys.executable, "-m", "sbomgen", "diff"]
    for files in (1, args.files):
        work = tempfile.mkdtemp(prefix="bench-diff-")
        try:
            a, b, c = (os.path.join(work, n) for n in ("a.tar", "b.tar", "c.tar"))
            make_archive(a, args.size_mb, None, files)
            shutil.copyfile(a, b)
            make_archive(c, args.size_mb, LAYERS // 2, files)
            results["archive_mb"] = round(os.path.getsize(a) / (1 << 20), 1)
            shape = f"{files * LAYERS} files"
            cases = [("floor: sha256sum of both", ["sha256sum", a, b]), ("sbomgen identical", [*sbomgen, a, b]),
                     ("sbomgen one file differs", [*sbomgen, a, c])]
            if diffoscope:
                cases += [("diffoscope identical", [diffoscope, "--no-progress", a, b]),
                          ("diffoscope one file differs", [diffoscope, "--no-progress", a, c])]
            for case, cmd in cases:
                results["runs"].append(timed(cmd, args.timeout) | {"case": f"{case} ({shape})"})
        finally:
            shutil.rmtree(work)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump(results, handle, indent=2)
    print(f"two {results['archive_mb']} MB docker-archives, {LAYERS} layers")
    print(f"{'case':52} {'exit':>4} {'seconds':>8} {'peak RSS MB':>12}")
    for run in results["runs"]:
        print(f"{run['case']:52} {str(run['exit_code']):>4} {run['seconds']:>8} {run['peak_rss_mb']:>12}")
    if "diffoscope" in results:
        print(results["diffoscope"])


if __name__ == "__main__":
    main()
