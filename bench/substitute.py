"""Make every output of an instantiated graph valid, the way a binary cache would.

Nix 2.8 schedules tens of thousands of builds too slowly for a benchmark, but a NixOS
system is mostly *substituted*: its outputs come from a cache and are registered as valid
with their deriver and references.  This does the same for the generated graphs of
bench/nixpkgs_graph.py, with no cache: it runs each derivation's own builder with its own
environment (``$out`` set, as Nix does), checks every fixed-output result against its
declared hash, finds references by scanning for the store paths of the derivation's inputs
(as Nix does), and registers the lot with the real ``nix-store --register-validity``, which
computes each NAR hash itself.  After that, Nix considers the closure built:
``nix-store --realise`` of the root has nothing left to do.

    python3 bench/substitute.py ROOT.drv      # with NIX_STORE_DIR etc. of a private store
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from sbomgen.nix.derivation import read_derivation  # noqa: E402
from sbomgen.nix.store import NixStore  # noqa: E402


def _run_builder(drv, out: str) -> None:
    env = dict(drv.env)
    env.update({"out": out, "NIX_BUILD_TOP": "/tmp", "TMPDIR": "/tmp", "HOME": "/homeless-shelter"})
    if drv.builder.endswith("/sh") and len(drv.args) == 2 and drv.args[0] == "-c" and len(drv.args[1]) > 100_000:
        # The root lists thousands of store paths: over Linux's 128 KiB limit for one argument
        # (Nix itself could not exec it), so the shell reads the same script from stdin.
        done = subprocess.run([drv.builder, "-s"], input=drv.args[1].encode(), env=env, capture_output=True)
    else:
        done = subprocess.run([drv.builder, *drv.args], env=env, capture_output=True)
    if done.returncode != 0 or not os.path.lexists(out):
        raise RuntimeError(f"builder of {drv.path} failed: {done.stderr.decode(errors='replace')[-300:]}")


def _contents(path: str) -> bytes:
    if os.path.isfile(path):
        with open(path, "rb") as handle:
            return handle.read()
    chunks = []
    for parent, _dirs, files in os.walk(path):
        for name in sorted(files):
            with open(os.path.join(parent, name), "rb") as handle:
                chunks.append(handle.read())
    return b"\n".join(chunks)


def substitute(root_drv: str, workers: int = 4) -> int:
    """Realise every output in the closure of ``root_drv`` outside Nix and register it; returns
    how many paths were registered."""
    closure = subprocess.run(["nix-store", "-qR", root_drv], capture_output=True, text=True, check=True).stdout.split()
    drvs = {p: read_derivation(p) for p in closure if p.endswith(".drv")}
    outputs = [(drv, name, o.path) for drv in drvs.values() for name, o in drv.outputs.items()]
    store = NixStore(os.path.dirname(root_drv))
    valid = store.path_infos([o for _d, _n, o in outputs])
    invalid = {o for _d, _n, o in outputs if o not in valid}
    todo = [item for item in outputs if item[2] in invalid]
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda item: _run_builder(item[0], item[2]), [item for item in todo if not os.path.lexists(item[2])]))
    lines: list[str] = []
    for drv, name, out in todo:
        output = drv.outputs[name]
        data = _contents(out)
        if output.hash:  # fixed-output: what the builder produced must be what was declared
            if output.mode != "flat" or hashlib.new(output.algo, data).hexdigest() != output.hash:
                raise RuntimeError(f"{out}: content does not match the declared {output.algo} hash")
        inputs = {o.path for dep in drv.input_drvs for o in drvs[dep].outputs.values()} | set(drv.input_srcs)
        refs = sorted(p for p in inputs if p.encode() in data)
        lines += [out, drv.path, str(len(refs)), *refs]
    if lines:
        subprocess.run(["nix-store", "--register-validity"], input="\n".join(lines) + "\n", text=True, check=True)
    return len(todo)


if __name__ == "__main__":
    count = substitute(os.path.realpath(sys.argv[1]))
    print(f"registered {count} outputs as valid")
