"""Thin wrappers around the ``nix`` command-line tools: the only place sbomgen runs Nix.

Everything else reads the store directly; these are for what only Nix can do: build
(``nix-build``), and report its version.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime

from sbomgen.errors import NixCommandError


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise NixCommandError(f"{name} not found: install Nix (Debian: apt-get install nix-bin)")
    return path


def nix_version() -> str | None:
    """The installed Nix version (``2.8.0``), or None when Nix is not installed."""
    path = shutil.which("nix-store")
    if path is None:
        return None
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip().rsplit(" ", 1)[-1] or None


@dataclass(frozen=True, slots=True)
class BuildResult:
    outputs: tuple[str, ...]
    started: datetime
    finished: datetime
    log_tail: str


def build(expression: str, attributes: list[str], out_link: str | None, extra_args: list[str] | None = None) -> BuildResult:
    """``nix-build EXPRESSION -A ATTR... [-o OUT_LINK]``: the output paths and the wall-clock times."""
    if not os.path.exists(expression):
        raise NixCommandError(f"no such Nix expression: {expression}")
    args = [_tool("nix-build"), expression]
    for attr in attributes:
        args += ["-A", attr]
    args += ["-o", out_link] if out_link else ["--no-out-link"]
    args += extra_args or []
    started = datetime.now(UTC)
    proc = subprocess.run(args, capture_output=True, text=True)
    finished = datetime.now(UTC)
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit code {proc.returncode}"
        raise NixCommandError(f"nix-build {expression} failed: {last}")
    outputs = tuple(line.strip() for line in proc.stdout.splitlines() if line.strip())
    if not outputs:
        raise NixCommandError(f"nix-build {expression} printed no output path")
    return BuildResult(outputs, started, finished, "\n".join(proc.stderr.splitlines()[-20:]))


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of ``nix-store --realise DRV --check --keep-failed``."""

    status: str  # "reproducible" | "differs" | "failed" | "not-built"
    message: str
    check_paths: dict[str, str]  # output path -> the .check path Nix kept, for outputs that differ
    kept_build_dirs: tuple[str, ...]


_DIFFERS = re.compile(r"output '([^']+)' differs from '([^']+\.check)'")
_KEPT = re.compile(r"keeping build directory '([^']+)'")


def check(drv_path: str) -> CheckResult:
    """Rebuild a derivation whose outputs are in the store and compare, as Nix does."""
    proc = subprocess.run(
        [_tool("nix-store"), "--realise", drv_path, "--check", "--keep-failed"], capture_output=True, text=True
    )
    stderr = proc.stderr
    kept = tuple(_KEPT.findall(stderr))
    lines = [line for line in stderr.strip().splitlines() if line.startswith("error:")]
    message = lines[-1].removeprefix("error: ") if lines else ""
    if proc.returncode == 0:
        return CheckResult("reproducible", "", {}, kept)
    differing = dict(_DIFFERS.findall(stderr))
    if differing:
        return CheckResult("differs", message, differing, kept)
    if "are not valid, so checking is not possible" in stderr:
        return CheckResult("not-built", "outputs are not in the store: nothing to compare with", {}, kept)
    return CheckResult("failed", message or f"nix-store exited {proc.returncode}", {}, kept)


def local_system() -> str:
    """Nix's name for this machine's platform (``x86_64-linux``)."""
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    return f"{machine}-{platform.system().lower()}"
