"""The direct purl writer gives exactly what packageurl-python gives."""

from __future__ import annotations

import random

import pytest
from packageurl import PackageURL

from sbomgen.graph.identifiers import purl_for
from sbomgen.graph.model import Component


def _reference(name: str, version: str, output: str | None) -> str:
    qualifiers = {"output": output} if output and output != "out" else None
    return PackageURL(type="nix", name=name, version=version or None, qualifiers=qualifiers).to_string()


@pytest.mark.parametrize(
    "name,version,output",
    [
        ("glibc", "2.38-44", "out"), ("glibc", "2.38-44", "dev"), ("setup.sh", "", None), ("gcc", "13.2.0", "lib"),
        ("g++-wrapper", "1.0", None), ("python3.11-foo", "1.0+git", "dist"), ("with space", "1 2", "o p"),
        ("Ünïcode", "ß", None), ("a/b", "1@2", "x?y"), ("x", "1:2~3", "bin"), ("percent%20", "1%", None),
    ],
)
def test_known_cases(name, version, output):
    component = Component(store_path=f"/s/abc-{name}", name=name, version=version, output=output)
    assert purl_for(component) == _reference(name, version, output)


def test_every_printable_character():
    rng = random.Random(7)
    alphabet = [chr(c) for c in range(32, 127)] + ["é", "€", "\u00a0"]
    for _ in range(3000):
        name = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6)))
        version = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 4)))
        output = rng.choice([None, "out", "dev", "".join(rng.choice(alphabet) for _ in range(3))])
        component = Component(store_path="/s/abc-x", name=name, version=version, output=output)
        try:
            expected = _reference(name, version, output)
        except (TypeError, ValueError):  # packageurl rejects some names ("/"): so must we
            with pytest.raises((TypeError, ValueError)):
                purl_for(component)
            continue
        assert purl_for(component) == expected, (name, version, output)
