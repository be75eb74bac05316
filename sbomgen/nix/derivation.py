"""Nix ``.drv`` files: the ATerm ``Derive(...)`` form, parsed fast and strictly.

A derivation is ``Derive([outputs],[inputDrvs],[inputSrcs],"system","builder",[args],[env])``
with outputs ``("name","path","hashAlgo","hash")`` and inputDrvs ``("drv",["out",...])``.
Strings escape ``\\"``, ``\\\\``, ``\\n``, ``\\r`` and ``\\t``.  This is a hot path (a build-time
SBOM of nixpkgs parses tens of thousands of them), so it is an index-based scanner over the
text that slices whole string bodies with ``str.find`` when they hold no escape.
"""

from __future__ import annotations

from dataclasses import dataclass

from sbomgen.errors import DerivationError

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}


@dataclass(frozen=True, slots=True)
class DerivationOutput:
    name: str
    path: str
    """Empty for floating content-addressed outputs (known only once built)."""
    hash_algo: str
    """As written: ``""`` (input-addressed), ``sha256`` (flat), ``r:sha256`` (recursive), ``text:sha256``."""
    hash: str
    """The declared hash (hex) of a fixed-output derivation, else ``""``."""

    @property
    def is_fixed(self) -> bool:
        return bool(self.hash)

    @property
    def mode(self) -> str | None:
        if not self.hash_algo:
            return None
        if self.hash_algo.startswith("r:"):
            return "recursive"
        if self.hash_algo.startswith("text:"):
            return "text"
        return "flat"

    @property
    def algo(self) -> str | None:
        if not self.hash_algo:
            return None
        return self.hash_algo.rsplit(":", 1)[-1]


@dataclass(frozen=True, slots=True)
class Derivation:
    path: str | None
    outputs: dict[str, DerivationOutput]
    input_drvs: dict[str, tuple[str, ...]]
    input_srcs: tuple[str, ...]
    system: str
    builder: str
    args: tuple[str, ...]
    env: dict[str, str]

    @property
    def name(self) -> str:
        return self.env.get("name", "")

    @property
    def output_names(self) -> tuple[str, ...]:
        """Output names in declared order (the ``outputs`` env; the first is the default output).

        The ATerm lists outputs sorted by name, so the declaration order is only in the env.
        """
        declared = tuple(self.env.get("outputs", "").split())
        if sorted(declared) == sorted(self.outputs):
            return declared
        return tuple(self.outputs)

    @property
    def is_fixed_output(self) -> bool:
        return len(self.outputs) == 1 and "out" in self.outputs and self.outputs["out"].is_fixed


class _SyntaxError(Exception):
    def __init__(self, offset: int, expected: str):
        super().__init__(offset, expected)
        self.offset = offset
        self.expected = expected


def _parse(text: str) -> tuple:
    pos = 0
    end = len(text)
    find = text.find

    def expect(literal: str) -> None:
        nonlocal pos
        if not text.startswith(literal, pos):
            raise _SyntaxError(pos, repr(literal))
        pos += len(literal)

    def string() -> str:
        nonlocal pos
        if pos >= end or text[pos] != '"':
            raise _SyntaxError(pos, "a string")
        start = pos + 1
        close = find('"', start)
        if close < 0:
            raise _SyntaxError(start, "the end of the string")
        body = text[start:close]
        if "\\" not in body:
            pos = close + 1
            return body
        parts = []
        index = start
        while True:
            if index >= end:
                raise _SyntaxError(start, "the end of the string")
            char = text[index]
            if char == '"':
                pos = index + 1
                return "".join(parts)
            if char == "\\":
                index += 1
                if index >= end:
                    raise _SyntaxError(index, "an escaped character")
                char = text[index]
                parts.append(_ESCAPES.get(char, char))
            else:
                parts.append(char)
            index += 1

    def sequence(item) -> list:
        """``[item,item,...]``, possibly empty."""
        nonlocal pos
        expect("[")
        items: list = []
        if text.startswith("]", pos):
            pos += 1
            return items
        while True:
            items.append(item())
            if text.startswith(",", pos):
                pos += 1
            elif text.startswith("]", pos):
                pos += 1
                return items
            else:
                raise _SyntaxError(pos, "',' or ']'")

    def string_list() -> list[str]:
        return sequence(string)

    def tuple_list(fields) -> list:
        def parenthesised():
            expect("(")
            value = fields()
            expect(")")
            return value

        return sequence(parenthesised)

    def output() -> DerivationOutput:
        name = string()
        expect(",")
        path = string()
        expect(",")
        algo = string()
        expect(",")
        return DerivationOutput(name, path, algo, string())

    def input_drv() -> tuple[str, tuple[str, ...]]:
        path = string()
        expect(",")
        return path, tuple(string_list())

    def pair() -> tuple[str, str]:
        key = string()
        expect(",")
        return key, string()

    if text.startswith("DrvWithVersion(", 0):
        pos = len("DrvWithVersion(")
        string()  # version tag, e.g. "xp-dyn-drv"
        expect(",")
    else:
        expect("Derive(")
    outputs = tuple_list(output)
    expect(",")
    inputs = tuple_list(input_drv)
    expect(",")
    srcs = string_list()
    expect(",")
    system = string()
    expect(",")
    builder = string()
    expect(",")
    args = string_list()
    expect(",")
    env = tuple_list(pair)
    expect(")")
    if text[pos:].strip():
        raise _SyntaxError(pos, "the end of the file")
    return outputs, inputs, srcs, system, builder, args, env


def parse_derivation(text: str, path: str | None = None) -> Derivation:
    """Parse the ATerm text of a ``.drv``; :class:`DerivationError` when it is malformed."""
    try:
        outputs, inputs, srcs, system, builder, args, env = _parse(text)
    except _SyntaxError as exc:
        where = path or "<text>"
        raise DerivationError(f"corrupt derivation {where}: expected {exc.expected} at offset {exc.offset}") from None
    return Derivation(
        path=path,
        outputs={o.name: o for o in outputs},
        input_drvs=dict(inputs),
        input_srcs=tuple(srcs),
        system=system,
        builder=builder,
        args=tuple(args),
        env=dict(env),
    )


def read_derivation(path: str) -> Derivation:
    """Read and parse a ``.drv`` file."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise DerivationError(f"derivation not found: {path} (garbage-collected?)") from None
    except OSError as exc:
        raise DerivationError(f"cannot read derivation {path}: {exc.strerror or exc}") from None
    return parse_derivation(text, path)
