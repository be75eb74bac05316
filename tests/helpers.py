"""Small helpers shared by the tests: run the real CLI, read the real store DB."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


def run_sbomgen(*args: str, env: dict[str, str] | None = None, cwd: str | Path | None = None) -> Run:
    """Run ``python -m sbomgen ARGS`` as a user would, in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("SBOMGEN_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "sbomgen", *args],
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def db_nar_hashes(db_path: str | Path) -> dict[str, str]:
    """path -> sha256 hex, straight from the Nix DB (Nix 2.8 stores ``sha256:<hex>``)."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        out = {}
        for path, value in conn.execute("SELECT path, hash FROM ValidPaths"):
            algo, _, digest = value.partition(":")
            assert algo == "sha256", value
            assert len(digest) == 64, f"expected hex narHash in the DB, got {value}"
            out[path] = digest
        return out
    finally:
        conn.close()


def load_json(path: str | Path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def cdx_property(component: dict, name: str) -> str | None:
    for prop in component.get("properties", []):
        if prop["name"] == name:
            return prop["value"]
    return None


def cdx_components(bom: dict) -> list[dict]:
    """metadata.component plus components: every component of the BOM."""
    return [bom["metadata"]["component"], *bom.get("components", [])]


def schema_errors(kind: str, document) -> list[str]:
    """The schema violations sbomgen itself reports (jsonschema-rs), after checking that
    python-jsonschema, a second implementation, gives the same verdict."""
    from sbomgen import schemas

    errors = schemas.schema_errors(kind, document)
    second = [e.message for e in schemas.reference_validator(kind).iter_errors(document)]
    assert bool(errors) == bool(second), f"jsonschema-rs says {errors[:3]}, python-jsonschema says {second[:3]}"
    return errors
