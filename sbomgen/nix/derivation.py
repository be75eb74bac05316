"""Nix ``.drv`` files: the ATerm ``Derive(...)`` form, parsed fast and strictly.

A derivation is ``Derive([outputs],[inputDrvs],[inputSrcs],"system","builder",[args],[env])``
with outputs ``("name","path","hashAlgo","hash")``, inputDrvs ``("drv",["out",...])`` and env
``("key","value")``.  Strings are double-quoted; ``\\n``, ``\\r`` and ``\\t`` are escapes and a
backslash before any other character stands for that character.  Nix writes no whitespace.

This is a hot path (a build-time SBOM of nixpkgs reads tens of thousands of .drv files), so
there are two parsers:

* :func:`_parse_fast` splits the text at its unescaped ``"`` (one C call when it holds no
  backslash), after which the pieces alternate between punctuation and string values.  It checks each piece of punctuation
  against the few that Nix writes, whole, and reads the environment with slices and
  ``list.count`` in C.  It gives up (returns ``None``) on anything unusual.
* :func:`_parse_exact`, an index-based scanner, is the reference.  It reads what the fast
  path gave up on (``DrvWithVersion``, trailing whitespace) and, on malformed text, says
  what it expected and at which byte offset.

Both build the same :class:`Derivation` from the same text; the tests check that on
real and damaged .drv files.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass

from sbomgen.errors import DerivationError
from sbomgen.nix.storepath import is_store_path, store_paths_matcher

#: ``hashAlgo`` method prefix -> mode
_METHODS = {"": "flat", "r": "recursive", "text": "text", "git": "git"}

#: an output name (Nix: the characters of a store path name)
_OUTPUT_NAME = re.compile(r"[A-Za-z0-9+\-._?=]+")
_OUTPUT_NAMES = re.compile(rf"(?:{_OUTPUT_NAME.pattern}\n)*{_OUTPUT_NAME.pattern}")


@dataclass(frozen=True, slots=True)
class DerivationOutput:
    """One ``("name","path","hashAlgo","hash")`` output of a derivation."""

    name: str
    path: str
    """Empty for floating content-addressed outputs (known only once built)."""
    hash_algo: str
    """As written: ``""`` (input-addressed), ``sha256`` (flat), ``r:sha256`` (recursive), ``text:sha256``."""
    hash: str
    """The declared hash (hex) of a fixed-output derivation, ``impure`` for an impure one, else ``""``."""

    @property
    def is_fixed(self) -> bool:
        """Whether the output's hash is declared up front (a fixed-output derivation)."""
        return bool(self.hash) and self.hash != "impure"

    @property
    def mode(self) -> str | None:
        """``"flat"``, ``"recursive"``, ``"text"`` or ``"git"`` (``git:sha1``, Nix 2.20+) for a
        content-addressed output, else ``None``; a method Nix may add later is returned as written."""
        algo = self.hash_algo
        if not algo:
            return None
        method = algo.rpartition(":")[0]
        return _METHODS.get(method, method)

    @property
    def algo(self) -> str | None:
        """The hash algorithm (``sha256``), without the ``r:``/``text:`` method prefix."""
        return self.hash_algo.rpartition(":")[2] or None


@dataclass(frozen=True, slots=True)
class Derivation:
    """A parsed ``.drv`` file."""

    path: str | None
    outputs: dict[str, DerivationOutput]
    """By name, in the order of the .drv (which Nix sorts by name)."""
    input_drvs: dict[str, tuple[str, ...]]
    """.drv path -> the names of its outputs this derivation uses."""
    input_srcs: tuple[str, ...]
    system: str
    builder: str
    args: tuple[str, ...]
    env: dict[str, str]

    @property
    def name(self) -> str:
        """The derivation's name (``env["name"]``, e.g. ``hello-2.12``)."""
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
        """Exactly one output, ``out``, with a declared hash: a fetch, in nixpkgs terms."""
        return len(self.outputs) == 1 and "out" in self.outputs and self.outputs["out"].is_fixed


_Parts = tuple[
    dict[str, DerivationOutput],
    dict[str, tuple[str, ...]],
    tuple[str, ...],
    str,
    str,
    tuple[str, ...],
    dict[str, str],
]

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def _unescape_match(match: re.Match[str]) -> str:
    char = match[1]
    return _ESCAPES.get(char, char)


def _unescape(body: str) -> str:
    """The value of a string body as written between the quotes."""
    return _ESCAPE.sub(_unescape_match, body) if "\\" in body else body


# inside _split: an escaped quote becomes "\1" until the delimiters are found
_SPLIT_ESCAPES = {'"': "\1", "n": "\n", "r": "\r", "t": "\t"}


def _split(text: str) -> list[str] | None:
    """``text`` split at its unescaped ``"``, escapes resolved; ``None`` to give up.

    The pieces alternate: punctuation (even indices) and string values (odd indices).  The
    escapes resolved are only those Nix writes, ``\\" \\\\ \\n \\r \\t``: each turns into a
    character no punctuation holds, so an escape outside a string still fails the caller's
    checks of the punctuation.  Gives up on an odd number of pieces (a string left open),
    any other escape, and text holding a control character used here as a placeholder.
    Only one-character searches are used: CPython runs those at memchr speed, longer ones
    several times slower.
    """
    if "\\" not in text:
        pieces = text.split('"')
    elif "\0" in text or "\1" in text or "\2" in text:
        return None
    else:
        # resolve escapes, keeping escaped backslashes ("\0") and quotes ("\1") apart, so that
        # every '"' left is a delimiter; those become "\2", then the placeholders what they mean
        segments = text.split("\\")
        parts = [segments[0]]
        index, count = 1, len(segments)
        while index < count:
            segment = segments[index]
            if segment:
                escaped = _SPLIT_ESCAPES.get(segment[0])
                if escaped is None:  # "\\$" for "$": valid, but Nix never writes it
                    return None
                parts.append(escaped)
                parts.append(segment[1:])
                index += 1
            elif index + 1 < count:  # two backslashes: one escaped backslash
                parts.append("\0")
                parts.append(segments[index + 1])
                index += 2
            else:  # a backslash at the end
                return None
        text = "".join(parts).replace('"', "\2").replace("\1", '"').replace("\0", "\\")
        pieces = text.split("\2")
    return pieces if len(pieces) & 1 else None


def _parse_fast(text: str) -> _Parts | None:
    """Parse the usual ``Derive(...)`` text quickly, or return ``None`` to leave it to
    :func:`_parse_exact` (malformed or unusual text)."""
    p = _split(text)
    if p is None or p[0] != "Derive([(":
        return None
    v = p  # the same pieces: p where punctuation is checked, v where values are read
    count = len(p)
    try:
        outputs: dict[str, DerivationOutput] = {}
        i = 1
        while True:  # ("name","path","algo","hash") with i at the name
            if p[i + 1] != "," or p[i + 3] != "," or p[i + 5] != ",":
                return None
            outputs[v[i]] = DerivationOutput(v[i], v[i + 2], v[i + 4], v[i + 6])
            sep = p[i + 7]
            i += 8
            if sep != "),(":
                break
        # rest: the punctuation after "inputDrvs]," -- "[" before inputSrcs, "[]," if none
        input_drvs: dict[str, tuple[str, ...]] = {}
        if sep == ")],[(":
            while True:  # ("drv",["out",...]) with i at the drv
                if p[i + 1] != ",[":
                    return None
                j = i + 2
                while p[j + 1] == ",":
                    j += 2
                input_drvs[v[i]] = tuple(v[i + 2 : j + 1 : 2])
                sep = p[j + 1]
                i = j + 2
                if sep != "]),(":
                    break
            if sep != "])],[" and sep != "])],[],":
                return None
            rest = sep[4:]
        elif sep == ")],[],[" or sep == ")],[],[],":
            rest = sep[6:]
        else:
            return None
        if rest == "[":  # inputSrcs, i at the first
            j = i
            while p[j + 1] == ",":
                j += 2
            input_srcs = tuple(v[i : j + 1 : 2])
            if p[j + 1] != "],":
                return None
            i = j + 2
        else:
            input_srcs = ()
        system, builder = v[i], v[i + 2]
        if p[i + 1] != ",":
            return None
        sep = p[i + 3]
        i += 4
        if sep == ",[":  # args, i at the first
            j = i
            while p[j + 1] == ",":
                j += 2
            args = tuple(v[i : j + 1 : 2])
            sep = p[j + 1]
            i = j + 2
            if sep == "],[(":
                pass
            elif sep == "],[])" and i == count:
                return outputs, input_drvs, input_srcs, system, builder, args, {}
            else:
                return None
        elif sep == ",[],[(":
            args = ()
        elif sep == ",[],[])" and i == count:
            return outputs, input_drvs, input_srcs, system, builder, (), {}
        else:
            return None
        # env to the end: "key" , "value" ),( ... "key" , "value" )]) with i at the first key
        pairs = (count - i) // 4
        if (
            (count - i) % 4
            or p[count - 1] != ")])"
            or p[i + 1 : count : 4].count(",") != pairs
            or p[i + 3 : count - 1 : 4].count("),(") != pairs - 1
        ):
            return None
        env = dict(zip(v[i:count:4], v[i + 2 : count : 4], strict=False))
    except IndexError:
        return None
    return outputs, input_drvs, input_srcs, system, builder, args, env


class _SyntaxError(Exception):
    """Raised by :func:`_parse_exact`: ``expected`` was expected at character ``offset``."""

    def __init__(self, offset: int, expected: str) -> None:
        super().__init__(offset, expected)
        self.offset = offset
        self.expected = expected


_MAX_NESTING = 100
"""Dynamic outputs (outputs of outputs) nest; a real .drv nests a few deep, not thousands."""

_VERSIONS = ("xp-dyn-drv",)
"""``DrvWithVersion`` versions understood (Nix's dynamic-derivations experiment)."""


def _parse_exact(text: str) -> _Parts:
    """Parse any derivation text Nix writes, or raise :class:`_SyntaxError` saying where and why."""
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
        if not text.startswith('"', pos):
            raise _SyntaxError(pos, "'\"' (a string)")
        start = pos + 1
        close = find('"', start)
        backslash = find("\\", start, close)
        if close >= 0 and backslash < 0:
            pos = close + 1
            return text[start:close]
        index = start
        while True:  # escapes: walk to the first unescaped quote
            close = find('"', index)
            backslash = find("\\", index, close if close >= 0 else end)
            if backslash < 0:
                if close < 0:
                    raise _SyntaxError(end, "'\"' (the end of the string)")
                pos = close + 1
                return _unescape(text[start:close])
            if backslash + 1 >= end:
                raise _SyntaxError(end, "an escaped character")
            index = backslash + 2

    def more(first: bool) -> bool:
        """In a list, before its first item or after another: is there one more?"""
        nonlocal pos
        if text.startswith("]", pos):
            pos += 1
            return False
        if not first:
            if not text.startswith(",", pos):
                raise _SyntaxError(pos, "',' or ']'")
            pos += 1
        return True

    def strings() -> tuple[str, ...]:
        items: list[str] = []
        expect("[")
        while more(not items):
            items.append(string())
        return tuple(items)

    def outputs_of_input(level: int = 0) -> tuple[str, ...]:
        """An inputDrvs entry's outputs: ``[...]``; in xp-dyn-drv also ``([...],[(output,node)...])``.

        The second form is a dynamic dependency: output ``output`` of the input is itself a
        .drv whose ``node`` outputs are used.  Those outputs of a derivation not known
        before the build are dropped; ``output`` is kept as an output the input must build.
        """
        nonlocal pos
        if not (version and text.startswith("(", pos)):
            return strings()
        if level >= _MAX_NESTING:
            raise _SyntaxError(pos, f"at most {_MAX_NESTING} levels of dynamic outputs")
        pos += 1
        names = list(strings())
        expect(",[")
        first = True
        while more(first):
            first = False
            expect("(")
            output = string()
            expect(",")
            outputs_of_input(level + 1)
            expect(")")
            if output not in names:
                names.append(output)
        expect(")")
        return tuple(names)

    version = None
    if text.startswith("Derive("):
        pos = len("Derive(")
    elif text.startswith("DrvWithVersion("):
        pos = len("DrvWithVersion(")
        start = pos
        version = string()
        if version not in _VERSIONS:
            raise _SyntaxError(start, f"a known derivation version ({', '.join(map(repr, _VERSIONS))})")
        expect(",")
    else:
        raise _SyntaxError(0, "'Derive(' or 'DrvWithVersion('")
    expect("[")
    outputs: dict[str, DerivationOutput] = {}
    first = True
    while more(first):
        first = False
        expect("(")
        name = string()
        expect(",")
        path = string()
        expect(",")
        algo = string()
        expect(",")
        outputs[name] = DerivationOutput(name, path, algo, string())
        expect(")")
    expect(",[")
    input_drvs: dict[str, tuple[str, ...]] = {}
    first = True
    while more(first):
        first = False
        expect("(")
        drv = string()
        expect(",")
        input_drvs[drv] = outputs_of_input()
        expect(")")
    expect(",")
    input_srcs = strings()
    expect(",")
    system = string()
    expect(",")
    builder = string()
    expect(",")
    args = strings()
    expect(",[")
    env: dict[str, str] = {}
    first = True
    while more(first):
        first = False
        expect("(")
        key = string()
        expect(",")
        env[key] = string()
        expect(")")
    expect(")")
    if text[pos:].strip():
        raise _SyntaxError(pos, "the end of the file")
    return outputs, input_drvs, input_srcs, system, builder, args, env


def _byte_offset(text: str, offset: int) -> int:
    """The byte offset in the file of character ``offset`` of its (UTF-8) text."""
    try:
        return len(text[:offset].encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:
        return offset


def parse_derivation(text: str, path: str | None = None) -> Derivation:
    """Parse the ATerm text of a ``.drv`` (``path`` is recorded and named in errors).

    Raises :class:`~sbomgen.errors.DerivationError` when the text is malformed, with a
    one-line message saying what was expected at which byte offset.
    """
    parts = _parse_fast(text)
    if parts is None:
        try:
            parts = _parse_exact(text)
        except _SyntaxError as exc:
            where = path or "<text>"
            offset = _byte_offset(text, exc.offset)
            raise DerivationError(f"corrupt derivation {where}: expected {exc.expected} at offset {offset}") from None
    outputs, input_drvs, input_srcs, system, builder, args, env = parts
    return Derivation(path, outputs, input_drvs, input_srcs, system, builder, args, env)


#: the largest ``.drv`` read: a real one is a few KB, the largest in nixpkgs a few MB
MAX_DRV_BYTES = 64 << 20


def _kind(mode: int) -> str:
    """What a non-regular file is, in words, for an error message."""
    if stat.S_ISDIR(mode):
        return os.strerror(errno.EISDIR)
    kinds = {stat.S_ISFIFO: "a FIFO", stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device",
             stat.S_ISSOCK: "a socket", stat.S_ISLNK: "a symlink"}
    return "not a regular file (" + next((k for test, k in kinds.items() if test(mode)), "unknown type") + ")"


def _read_file(path: str, limit: int = MAX_DRV_BYTES) -> bytes:
    """The whole regular file ``path``, through the bare system calls (half the cost of
    ``open().read()``, which matters for the 40,000 ``.drv`` files of a system closure).

    A ``.drv`` in the store is never a symlink, and a FIFO, a device or a file larger than
    ``limit`` is never a ``.drv``: it is opened without following a final symlink and without
    blocking (a FIFO would wait for a writer), checked with ``fstat``, and read only up to
    ``limit``.  Raises :class:`OSError` (with ``strerror`` set) for what cannot be read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, _kind(info.st_mode))
        if info.st_size > limit:
            raise OSError(errno.EFBIG, f"larger than {limit >> 20} MiB ({info.st_size} bytes): not a derivation")
        chunks = []
        total = 0
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # grew while being read
                raise OSError(errno.EFBIG, f"larger than {limit >> 20} MiB: not a derivation")
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    finally:
        os.close(fd)


def check_store_paths(drv: Derivation, store_dir: str) -> None:
    """Raise :class:`DerivationError` unless every path ``drv`` names is a store path of ``store_dir``
    (and it has outputs, whose names, and those of the outputs of inputs it uses, are names).

    The paths are those sbomgen may open, hash or look up: the outputs (a floating
    content-addressed output has none), the ``inputDrvs`` (which must be ``.drv`` files)
    and the ``inputSrcs``.  ``HASH-NAME`` right below the store directory, nothing else: not
    ``/dev/zero``, not ``/etc/passwd``, not ``STORE/../x``, not a path inside a store path.
    The builder is only recorded (``/bin/sh`` and ``builtin:fetchurl`` are legitimate), never
    opened.
    """
    where = drv.path or "<text>"
    if not drv.outputs:
        raise DerivationError(f"corrupt derivation {where}: it has no outputs")
    names = [*drv.outputs, *(o for outs in drv.input_drvs.values() for o in outs)]
    # the usual case in two C calls: this runs for each of the 40,000 .drv of a system closure
    paths = [o.path for o in drv.outputs.values() if o.path] + [*drv.input_drvs, *drv.input_srcs]
    if (
        _OUTPUT_NAMES.fullmatch("\n".join(names))
        and (not paths or store_paths_matcher(store_dir)("\n".join(paths)))
        and all(d.endswith(".drv") for d in drv.input_drvs)
    ):
        return
    for name in names:
        if not _OUTPUT_NAME.fullmatch(name):
            raise DerivationError(f"corrupt derivation {where}: {name!r} is not an output name")

    def bad(what: str, value: str, why: str = f"not a store path of {store_dir}") -> DerivationError:
        return DerivationError(f"corrupt derivation {where}: {what} {value!r} is {why}")

    for name, output in drv.outputs.items():
        if output.path and not is_store_path(output.path, store_dir):
            raise bad(f"output {name!r} path", output.path)
    for input_drv in drv.input_drvs:
        if not is_store_path(input_drv, store_dir):
            raise bad("input derivation", input_drv)
        if not input_drv.endswith(".drv"):
            raise bad("input derivation", input_drv, "not a .drv file")
    for source in drv.input_srcs:
        if not is_store_path(source, store_dir):
            raise bad("input source", source)


def read_derivation(path: str, store_dir: str | None = None) -> Derivation:
    """Read and parse a ``.drv`` file.

    Raises :class:`~sbomgen.errors.DerivationError` when it is missing (e.g. garbage
    collected), unreadable, not a regular file, larger than :data:`MAX_DRV_BYTES` or
    malformed.  With ``store_dir`` (the store it belongs to) the file must be a store path
    of that store, and so must every path it names (:func:`check_store_paths`).  Bytes that
    are not UTF-8 are kept as lone surrogates (``surrogateescape``), as :func:`os.fsdecode`
    does.
    """
    if store_dir is not None and not is_store_path(path, store_dir):
        raise DerivationError(f"not a derivation in the store {store_dir}: {path!r}")
    try:
        data = _read_file(path)
    except FileNotFoundError:
        raise DerivationError(f"derivation not found: {path} (garbage-collected?)") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno == errno.ELOOP:
            reason = "a symlink (a .drv in the store never is)"
        raise DerivationError(f"cannot read derivation {path}: {reason}") from None
    drv = parse_derivation(data.decode("utf-8", "surrogateescape"), path)
    if store_dir is not None:
        check_store_paths(drv, store_dir)
    return drv


def printable(value: str) -> str:
    """``value`` with the lone surrogates standing for bytes that are not UTF-8 replaced by
    U+FFFD, for documents (JSON, XML) that cannot hold them."""
    if value.isascii():
        return value
    try:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a surrogate that stands for no byte
        return value.encode("utf-8", "replace").decode("utf-8")


__all__ = [
    "MAX_DRV_BYTES",
    "Derivation",
    "DerivationOutput",
    "check_store_paths",
    "parse_derivation",
    "printable",
    "read_derivation",
]
