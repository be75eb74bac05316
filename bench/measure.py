"""Timing a command as a user runs it: wall time, and the peak RSS of that process alone."""

from __future__ import annotations

import os
import subprocess
import time


def _hwm_kb(pid: int) -> int:
    """VmHWM of a running process: its peak RSS since its exec (rusage would count the
    pre-exec copy of this Python process as well)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def timed(cmd: list[str], timeout: float) -> dict:
    """Wall time and the peak RSS of this one child, polled from /proc every 10 ms."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = start + timeout
    peak = 0
    while True:
        peak = max(peak, _hwm_kb(proc.pid))
        pid, status, _usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            os.wait4(proc.pid, 0)
            status = None
            break
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status) if status is not None else None
    proc.returncode = code
    return {
        "command": " ".join(os.path.basename(c) if i == 0 else c for i, c in enumerate(cmd)),
        "exit_code": code,
        "seconds": round(elapsed, 2),
        "peak_rss_mb": round(peak / 1024, 1),
        "timed_out": code is None,
    }


def private_store(prefix: str) -> tuple[str, dict[str, str]]:
    """A scratch directory and the environment that makes Nix use a private store inside it
    (offline, no sandbox, no build users), for benchmarks that build with the real Nix."""
    import tempfile

    root = tempfile.mkdtemp(prefix=prefix)
    os.chmod(root, 0o755)
    return root, {
        "NIX_STORE_DIR": f"{root}/store", "NIX_STATE_DIR": f"{root}/state", "NIX_LOG_DIR": f"{root}/log",
        "NIX_CONFIG": "substituters =\nsandbox = false\nbuild-users-group =\n",
    }


def remove_store(root: str) -> None:
    """Delete a private store (its paths are read-only, as Nix leaves them)."""
    import shutil

    subprocess.run(["chmod", "-R", "u+w", root], check=False)
    shutil.rmtree(root, ignore_errors=True)


def save_results(results: dict, path: str) -> None:
    import json

    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        json.dump(results, handle, indent=2)
