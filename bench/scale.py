"""Benchmark at nixpkgs scale, with the floor measured in the same run.

    python3 bench/scale.py [--packages 20000] [--built 2000]

1. Writes a nixpkgs-shaped graph of ``--packages`` packages (bench/nixpkgs_graph.py) and
   instantiates it with the real nix-instantiate into a private store: 2 derivations per
   package (the package and its source fetch), so 20,000 packages are 40,000 derivations.
2. Builds a smaller graph of ``--built`` packages with nix-build: its runtime closure has about
   that many store paths.
3. Times, side by side: the floor (`nix-store -qR` of the result, `nix-store -qR
   --include-outputs` of the .drv), then sbomgen's runtime SBOM, build-time SBOM (SPDX +
   CycloneDX, with and without validation) and `provenance --recursive`.

Reports wall time, peak RSS and the ratio to the floor as a table and JSON
(bench/results/scale.json). Figures, not assertions.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from measure import private_store, remove_store, save_results, timed

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from nixpkgs_graph import generate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=20000)
    parser.add_argument("--built", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "scale.json"))
    args = parser.parse_args()
    root, nix_env = private_store("bench-scale-")
    os.environ.update(nix_env)
    runs = []
    try:
        big, small = os.path.join(root, "big.nix"), os.path.join(root, "small.nix")
        with open(big, "w") as handle:
            handle.write(generate(args.packages, seed=7))
        with open(small, "w") as handle:
            handle.write(generate(args.built, seed=11))
        instantiate = timed(["nix-instantiate", big, "-A", "root", "--add-root", f"{root}/big.drv", "--indirect"], args.timeout)
        drv = os.path.realpath(f"{root}/big.drv")
        build = timed(["nix-build", small, "-A", "root", "-o", f"{root}/result"], args.timeout)
        result = f"{root}/result"
        drv_count = len(subprocess.run(["nix-store", "-qR", drv], capture_output=True, text=True, check=True).stdout.split())
        runtime_count = len(subprocess.run(["nix-store", "-qR", result], capture_output=True, text=True, check=True).stdout.split())
        sbomgen = [sys.executable, "-m", "sbomgen"]
        provenance = [sys.executable, "-m", "sbomgen.cli.provenance"]
        out = os.path.join(root, "out")
        os.makedirs(out)
        cases = [
            ("floor: nix-store -qR (runtime)", ["nix-store", "-qR", result], "runtime-floor"),
            ("floor: nix-store -qR --include-outputs (drv)", ["nix-store", "-qR", "--include-outputs", drv], "buildtime-floor"),
            ("sbomgen runtime SBOM, SPDX + CycloneDX", [*sbomgen, result, "--spdx", f"{out}/r.spdx.json", "--cdx", f"{out}/r.cdx.json"], "runtime-floor"),
            ("sbomgen runtime SBOM, --no-validate", [*sbomgen, result, "--no-validate", "--spdx", f"{out}/r.spdx.json", "--cdx", f"{out}/r.cdx.json"], "runtime-floor"),
            ("sbomgen build-time SBOM, SPDX + CycloneDX", [*sbomgen, drv, "--buildtime", "--spdx", f"{out}/b.spdx.json", "--cdx", f"{out}/b.cdx.json"], "buildtime-floor"),
            ("sbomgen build-time SBOM, --no-validate", [*sbomgen, drv, "--buildtime", "--no-validate", "--spdx", f"{out}/b.spdx.json", "--cdx", f"{out}/b.cdx.json"], "buildtime-floor"),
            ("sbomgen build-time SBOM, SPDX only, --no-validate", [*sbomgen, drv, "--buildtime", "--no-validate", "--spdx", f"{out}/b.spdx.json"], "buildtime-floor"),
            ("sbomgen build-time CSV", [*sbomgen, drv, "--buildtime", "--csv", f"{out}/b.csv"], "buildtime-floor"),
            ("provenance --recursive (built closure)", [*provenance, "-r", result, "-o", f"{out}/p.json"], "runtime-floor"),
        ]
        floors: dict[str, float] = {}
        for name, cmd, floor in cases:
            run = timed(cmd, args.timeout) | {"case": name}
            if name.startswith("floor"):
                floors[floor] = run["seconds"]
            else:
                run["ratio_to_floor"] = round(run["seconds"] / max(floors[floor], 1e-3), 1)
            runs.append(run)
        results = {
            "packages": args.packages, "derivations_in_closure": drv_count, "built_packages": args.built,
            "runtime_closure_paths": runtime_count, "nix_instantiate": instantiate, "nix_build": build, "runs": runs,
        }
    finally:
        remove_store(root)
    save_results(results, args.out)
    print(f"build-time closure: {drv_count} paths (nix-instantiate {instantiate['seconds']} s); "
          f"runtime closure: {runtime_count} paths (nix-build {build['seconds']} s)")
    print(f"{'case':52} {'exit':>4} {'seconds':>8} {'x floor':>8} {'peak RSS MB':>12}")
    for run in runs:
        print(f"{run['case']:52} {str(run['exit_code']):>4} {run['seconds']:>8} {str(run.get('ratio_to_floor', '')):>8} {run['peak_rss_mb']:>12}")


if __name__ == "__main__":
    main()
