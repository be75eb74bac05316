"""Benchmark: `sbomgen image` packing a ~500 MB closure, and `sbomgen oci:...` reading it back.

    python3 bench/image_pack.py [--size-mb 500] [--paths 5]

Builds a closure of ``--paths`` store paths (one app referring to the others, each holding
incompressible bytes) with the real nix-build in a private store, then times packing it into
an OCI layout and writing the image's SBOM from the layout alone (every layer streamed,
store paths extracted and NAR-hashed). Reports MB/s and peak RSS; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from measure import private_store, remove_store, save_results, timed

EXPRESSION = """
{ paths, mb }:
let
  blob = i: derivation {
    name = "blob-${toString i}-1.0";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    PATH = "/usr/bin:/bin";
    args = [ "-c" "mkdir -p $out/share; head -c ${toString mb}M /dev/urandom > $out/share/data.bin" ];
  };
  blobs = builtins.genList blob paths;
in derivation {
  name = "bench-app-1.0";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  PATH = "/usr/bin:/bin";
  args = [ "-c" "mkdir -p $out/bin; echo ${builtins.concatStringsSep " " (map toString blobs)} > $out/bin/app" ];
}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--paths", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "image_pack.json"))
    args = parser.parse_args()
    root, nix_env = private_store("bench-image-")
    env = {**os.environ, **nix_env}
    try:
        expr = os.path.join(root, "bench.nix")
        with open(expr, "w") as handle:
            handle.write(EXPRESSION)
        mb_each = max(1, args.size_mb // args.paths)
        subprocess.run(["nix-build", expr, "--arg", "paths", str(args.paths), "--arg", "mb", str(mb_each), "-o", f"{root}/result"],
                       env=env, check=True, capture_output=True)
        closure_mb = sum(
            os.path.getsize(os.path.join(d, f)) for p in subprocess.run(["nix-store", "-qR", f"{root}/result"], env=env, capture_output=True, text=True, check=True).stdout.split()
            for d, _, fs in os.walk(p) for f in fs
        ) / (1 << 20)
        os.environ.update({k: env[k] for k in ("NIX_STORE_DIR", "NIX_STATE_DIR", "NIX_LOG_DIR", "NIX_CONFIG")})
        sbomgen = [sys.executable, "-m", "sbomgen"]
        pack = timed([*sbomgen, "image", f"{root}/result", "-o", f"{root}/image.oci"], args.timeout)
        image_mb = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(f"{root}/image.oci") for f in fs) / (1 << 20)
        read = timed([*sbomgen, f"oci:{root}/image.oci", "--cdx", f"{root}/image.cdx.json", "--no-validate"], args.timeout)
        results = {
            "closure_mb": round(closure_mb, 1),
            "image_mb": round(image_mb, 1),
            "pack": pack | {"mb_per_s": round(closure_mb / pack["seconds"], 1)},
            "read": read | {"mb_per_s": round(closure_mb / read["seconds"], 1)},
        }
    finally:
        remove_store(root)
    save_results(results, args.out)
    print(f"closure {results['closure_mb']} MB in {args.paths + 1} store paths -> image {results['image_mb']} MB")
    for what in ("pack", "read"):
        r = results[what]
        print(f"{what:5} {r['seconds']:7.2f} s  {r['mb_per_s']:7.1f} MB/s  peak RSS {r['peak_rss_mb']} MB  exit {r['exit_code']}")


if __name__ == "__main__":
    main()
