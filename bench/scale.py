"""Benchmark at nixpkgs scale, with the floor measured in the same run.

    python3 bench/scale.py [--packages 20000] [--built 2000]

1. Writes a nixpkgs-shaped graph of ``--packages`` packages (bench/nixpkgs_graph.py) and
   instantiates it with the real nix-instantiate into a private store: 2 derivations per
   package (the package and its source fetch), so 20,000 packages are 40,000 derivations.
2. Builds a smaller graph of ``--built`` packages with nix-build: its runtime closure has about
   that many store paths.
3. Times, side by side, on the instantiated graph (nothing built): the floor `nix-store -qR
   --include-outputs X.drv`, then sbomgen's build-time SBOM (SPDX + CycloneDX: checked, with
   --no-validate, with --full-validation) and CSV; on the built closure: the floor
   `nix-store -qR result`, the runtime SBOM and `provenance --recursive`.
4. Makes every output of the big graph valid as a binary cache would (bench/substitute.py:
   each derivation's own builder, then `nix-store --register-validity`) and times, against
   the floors measured again: the build-time SBOM, `provenance --recursive` of its 40,000
   dependencies, and the runtime SBOM of its 20,000-path runtime closure.

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
        both = lambda tag: ["--spdx", f"{out}/{tag}.spdx.json", "--cdx", f"{out}/{tag}.cdx.json"]  # noqa: E731
        cases = [
            # the instantiated graph: derivations only, nothing built
            ("floor: nix-store -qR --include-outputs (drv)", ["nix-store", "-qR", "--include-outputs", drv], "drv"),
            ("build-time SBOM, SPDX + CycloneDX (checked)", [*sbomgen, drv, "--buildtime", *both("b")], "drv"),
            ("build-time SBOM, --no-validate", [*sbomgen, drv, "--buildtime", "--no-validate", *both("b")], "drv"),
            ("build-time SBOM, --full-validation (spdx-tools)", [*sbomgen, drv, "--buildtime", "--full-validation", *both("b")], "drv"),
            ("build-time CSV", [*sbomgen, drv, "--buildtime", "--csv", f"{out}/b.csv"], "drv"),
            # the built 2,000-package closure
            ("floor: nix-store -qR (runtime)", ["nix-store", "-qR", result], "runtime"),
            ("runtime SBOM, SPDX + CycloneDX (checked)", [*sbomgen, result, *both("r")], "runtime"),
            ("runtime SBOM, --no-validate", [*sbomgen, result, "--no-validate", *both("r")], "runtime"),
            ("provenance --recursive (built closure)", [*provenance, "-r", result, "-o", f"{out}/p.json"], "runtime"),
        ]
        runs = _run_cases(cases, args.timeout, phase="instantiated")
        # the big graph substituted: every output valid, as after a NixOS system download
        substituted = timed([sys.executable, os.path.join(HERE, "substitute.py"), drv], args.timeout)
        big_result = subprocess.run(["nix-store", "-q", "--outputs", drv], capture_output=True, text=True, check=True).stdout.split()[0]
        big_runtime = len(subprocess.run(["nix-store", "-qR", big_result], capture_output=True, text=True, check=True).stdout.split())
        cases = [
            ("floor: nix-store -qR --include-outputs (drv)", ["nix-store", "-qR", "--include-outputs", drv], "drv"),
            ("build-time SBOM, SPDX + CycloneDX (checked)", [*sbomgen, drv, "--buildtime", *both("sb")], "drv"),
            ("provenance --recursive", [*provenance, "-r", big_result, "-o", f"{out}/sp.json"], "drv"),
            ("floor: nix-store -qR (runtime)", ["nix-store", "-qR", big_result], "runtime"),
            ("runtime SBOM, SPDX + CycloneDX (checked)", [*sbomgen, big_result, *both("sr")], "runtime"),
        ]
        runs += _run_cases(cases, args.timeout, phase="substituted")
        results = {
            "packages": args.packages, "derivations_in_closure": drv_count, "built_packages": args.built,
            "runtime_closure_paths": runtime_count, "nix_instantiate": instantiate, "nix_build": build,
            "substitute": substituted, "substituted_runtime_closure_paths": big_runtime, "runs": runs,
        }
    finally:
        remove_store(root)
    save_results(results, args.out)
    print(f"build-time closure: {drv_count} paths (nix-instantiate {instantiate['seconds']} s); "
          f"runtime closure: {runtime_count} paths (nix-build {build['seconds']} s); "
          f"substituted: runtime closure {big_runtime} paths ({substituted['seconds']} s)")
    print(f"{'phase':13} {'case':50} {'exit':>4} {'seconds':>8} {'x floor':>8} {'peak RSS MB':>12}")
    for run in runs:
        print(f"{run['phase']:13} {run['case']:50} {str(run['exit_code']):>4} {run['seconds']:>8} "
              f"{str(run.get('ratio_to_floor', '')):>8} {run['peak_rss_mb']:>12}")


def _run_cases(cases: list[tuple[str, list[str], str]], timeout: float, phase: str) -> list[dict]:
    """Each case timed on its own; ratios are to the floor of the same kind in the same phase."""
    floors: dict[str, float] = {}
    runs = []
    for name, cmd, floor in cases:
        run = timed(cmd, timeout) | {"case": name, "phase": phase}
        if name.startswith("floor"):
            floors[floor] = run["seconds"]
        else:
            run["ratio_to_floor"] = round(run["seconds"] / max(floors[floor], 1e-3), 1)
        runs.append(run)
    return runs


if __name__ == "__main__":
    main()
