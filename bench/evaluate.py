"""The evaluation behind ``sbomgen -f FILE -A ATTR``, at nixpkgs scale, with its floor.

    python3 bench/evaluate.py [--packages 20000]

Writes the nixpkgs-shaped graph of bench/nixpkgs_graph.py with ``meta`` on every package and
dependencies passed as ``buildInputs`` (as nixpkgs passes them), then times, in a private store:

1. the floor: ``nix-instantiate graph.nix -A root`` (evaluates and writes every .drv);
2. sbomgen's one evaluation (:func:`sbomgen.nix.evaluate.evaluate`): the same, plus ``meta``,
   ``pname``, ``version`` and the attribute path of every reachable derivation, keyed by drvPath;
3. ``sbomgen -f graph.nix -A root --buildtime`` end to end (evaluation, walk, documents).

Reports wall time and peak RSS as JSON (bench/results/evaluate.json). Figures, not assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from measure import private_store, remove_store, save_results, timed  # noqa: E402
from nixpkgs_graph import generate  # noqa: E402

PROBE = (
    "import json, sys, time\n"
    "from sbomgen.nix.evaluate import evaluate, expression_target\n"
    "e = evaluate(expression_target(sys.argv[1], 'root', []))\n"
    "with_meta = sum(1 for p in e.packages.values() if p['meta'])\n"
    "print(json.dumps({'derivations': len(e.packages), 'with_meta': with_meta, 'seconds': round(e.seconds, 2)}))\n"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=20000)
    args = parser.parse_args()
    results: dict = {"packages": args.packages,
                     "note": "peak_rss_mb is of the measured process only (for sbomgen: Python, not its nix child)"}
    # the floor and sbomgen each in a fresh store (cold: every .drv written), then again (warm)
    for label, command in (("nix_instantiate", ["nix-instantiate", "GRAPH", "-A", "root"]),
                           ("sbomgen_evaluate", [sys.executable, "-c", PROBE, "GRAPH"])):
        root, env = private_store("bench-evaluate-")
        os.environ.update(env)
        os.environ["PYTHONPATH"] = os.path.dirname(HERE)
        try:
            graph = os.path.join(root, "graph.nix")
            with open(graph, "w") as handle:
                handle.write(generate(args.packages, meta=True))
            argv = [graph if a == "GRAPH" else a for a in command]
            for run in ("cold", "warm"):
                result = timed(argv, 3600)
                result["command"] = label.replace("_", " ") + " (" + run + ")"
                results[f"{label}_{run}"] = result
            if label == "sbomgen_evaluate":
                probe = subprocess.run(argv, capture_output=True, text=True, check=True)
                results["evaluation"] = json.loads(probe.stdout)
                out = os.path.join(root, "sbom.csv")
                result = timed([sys.executable, "-m", "sbomgen", "-f", graph, "-A", "root", "--buildtime", "--csv", out], 3600)
                result["command"] = "sbomgen -f graph.nix -A root --buildtime --csv sbom.csv (warm)"
                results["sbomgen_buildtime_sbom"] = result
        finally:
            remove_store(root)
    print(json.dumps(results, indent=2))
    save_results(results, os.path.join(HERE, "results", "evaluate.json"))


if __name__ == "__main__":
    main()
