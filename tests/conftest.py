"""A private, real Nix store for the tests.

The session fixture ``nix_store`` builds ``fixtures/weather.nix`` with the real ``nix-build``
into a temporary store (``NIX_STORE_DIR``/``NIX_STATE_DIR``/``NIX_LOG_DIR`` under a temp dir),
with no substituters, no sandbox and no build users, so it needs neither network nor daemon.
Without Nix the Nix tests are skipped locally, and fail in CI (``CI`` set).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WEATHER = REPO / "fixtures" / "weather.nix"
NIX_CONFIG = "substituters =\nsandbox = false\nbuild-users-group =\n"

#: attribute -> the outputs to build (each gets a result link: result-ATTR or result-ATTR-OUTPUT)
BUILT = {
    "app": ["out"],
    "entrypoint": ["out"],
    "glibc": ["out", "dev", "bin"],
    "sqlite": ["bin", "dev", "out"],
    "cacert": ["out"],
    "tzdata": ["out"],
    "go": ["out"],
    "gcc": ["out"],
    "stdenv": ["out"],
    "nginx": ["out"],
}


@dataclass
class NixStore:
    root: Path
    store_dir: Path
    state_dir: Path
    db_path: Path
    env: dict[str, str]
    results: dict[str, Path] = field(default_factory=dict)

    def run(self, *args: str) -> str:
        proc = subprocess.run(list(args), env={**os.environ, **self.env}, capture_output=True, text=True, cwd=self.root)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout

    def query_requisites(self, path: str | Path) -> set[str]:
        return set(self.run("nix-store", "-qR", str(path)).split())

    def query_deriver(self, path: str | Path) -> str:
        return self.run("nix-store", "-q", "--deriver", str(path)).strip()

    def instantiate(self, attr: str) -> str:
        return self.run("nix-instantiate", str(WEATHER), "-A", attr).strip()

    def build(self, attr: str, link: str) -> Path:
        self.run("nix-build", str(WEATHER), "-A", attr, "-o", str(self.root / link))
        return self.root / link


def make_store(root: Path) -> NixStore:
    """An empty private store under ``root`` (builders need to traverse it: 0755)."""
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    env = {
        "NIX_STORE_DIR": str(root / "store"),
        "NIX_STATE_DIR": str(root / "state"),
        "NIX_LOG_DIR": str(root / "log"),
        "NIX_CONFIG": NIX_CONFIG,
    }
    return NixStore(root, root / "store", root / "state", root / "state" / "db" / "db.sqlite", env)


def require_nix() -> None:
    if shutil.which("nix-build") is None:
        if os.environ.get("CI"):
            pytest.fail("nix-build is not installed: CI must install Debian's nix-bin (see .ci/run)")
        pytest.skip("nix-build is not installed (apt-get install -y nix-bin)")


@pytest.fixture(scope="session")
def nix_store(tmp_path_factory) -> NixStore:
    require_nix()
    store = make_store(tmp_path_factory.mktemp("nix"))
    for attr, outputs in BUILT.items():
        for output in outputs:
            # nix-build names the link of a non-out output LINK-OUTPUT
            store.build(f"{attr}.{output}", f"result-{attr}")
            suffix = "" if output == "out" else f"-{output}"
            store.results[f"{attr}{suffix}"] = store.root / f"result-{attr}{suffix}"
            assert store.results[f"{attr}{suffix}"].exists()
    return store


@pytest.fixture
def scratch_store(tmp_path) -> NixStore:
    """A fresh private store of one's own, for tests that damage it."""
    require_nix()
    return make_store(tmp_path / "nix")


@pytest.fixture
def nix_env(nix_store, monkeypatch) -> NixStore:
    """``nix_store`` with its environment set in ``os.environ`` for in-process code."""
    for key, value in nix_store.env.items():
        monkeypatch.setenv(key, value)
    return nix_store
