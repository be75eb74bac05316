"""SPDX licence expressions: the one parser every part of sbomgen uses.

``sbomgen check`` (policy matching), ``sbomgen validate`` (SPDX and CycloneDX documents from
anywhere), the SBOM writers' own checks and ``--meta`` all read licence expressions here, so
that one expression means one thing everywhere.

The grammar is SPDX 2.3 Annex D::

    compound := simple | simple WITH exception | compound AND compound
              | compound OR compound | "(" compound ")"
    simple   := licence-id | licence-id "+" | [DocumentRef-x:]LicenseRef-y

``WITH`` binds tighter than ``AND``, ``AND`` tighter than ``OR``.  The licence and exception
lists are SPDX's, as license-expression ships them (its scancode-only ``LicenseRef-scancode-*``
keys and non-SPDX aliases such as ``GPL`` are not SPDX ids and are not accepted).

Meaning, for matching:

* ids are matched case-insensitively and reported with SPDX's spelling (``mit`` is ``MIT``);
* deprecated ids are their current equivalent (``GPL-2.0`` is ``GPL-2.0-only``, ``GPL-2.0+``
  is ``GPL-2.0-or-later``, ``GPL-2.0-with-classpath-exception`` is
  ``GPL-2.0-only WITH Classpath-exception-2.0``);
* ``ID+`` is ``ID-or-later`` when SPDX lists that id, else ``ID`` marked "or later" (matched
  as ``ID``);
* ``LicenseRef-`` and ``DocumentRef-…:LicenseRef-`` ids are matched literally (case and all);
* ``L WITH E`` is licence ``L`` with an exception: the exception grants extra permissions and
  never changes which licence ``L`` is;
* anything else is not an expression: unknown ids (neither on SPDX's list nor a
  ``LicenseRef-``), an exception used as a licence, a licence used as an exception, dangling
  operators, unbalanced parentheses, ``NOASSERTION``/``NONE`` inside an expression.
  :func:`parse` raises :class:`LicenceExpressionError` naming what is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache

from license_expression import get_spdx_licensing

from sbomgen.text import quoted

#: longest expression read (a real one is a few hundred characters)
MAX_EXPRESSION_CHARS = 65_536
#: deepest nesting of parentheses
MAX_NESTING = 64

_REF = re.compile(r"(?:DocumentRef-[A-Za-z0-9.+-]+:)?LicenseRef-[A-Za-z0-9.-]+")
_ID = re.compile(r"[A-Za-z0-9.-]+")
_TOKEN = re.compile(r"\s*(?:(\()|(\))|([^\s()]+))")
_SPECIAL = ("NOASSERTION", "NONE")

#: deprecated SPDX ids that the current list says with WITH (SPDX's deprecation notes)
_DEPRECATED_WITH = {
    "gpl-2.0-with-autoconf-exception": ("GPL-2.0-only", "Autoconf-exception-2.0"),
    "gpl-2.0-with-bison-exception": ("GPL-2.0-or-later", "Bison-exception-2.2"),
    "gpl-2.0-with-classpath-exception": ("GPL-2.0-only", "Classpath-exception-2.0"),
    "gpl-2.0-with-font-exception": ("GPL-2.0-only", "Font-exception-2.0"),
    "gpl-2.0-with-gcc-exception": ("GPL-2.0-only", "GCC-exception-2.0"),
    "gpl-3.0-with-autoconf-exception": ("GPL-3.0-only", "Autoconf-exception-3.0"),
    "gpl-3.0-with-gcc-exception": ("GPL-3.0-only", "GCC-exception-3.1"),
    "ecos-2.0": ("GPL-2.0-or-later", "eCos-exception-2.0"),
    "wxwindows": ("LGPL-2.0-or-later", "WxWindows-exception-3.1"),
}
#: other deprecated SPDX ids, which license-expression knows as aliases of the current one
_DEPRECATED = {
    "agpl-1.0", "agpl-3.0", "bsd-2-clause-freebsd", "bsd-2-clause-netbsd", "bzip2-1.0.5", "gfdl-1.1",
    "gfdl-1.2", "gfdl-1.3", "gpl-1.0", "gpl-1.0+", "gpl-2.0", "gpl-2.0+", "gpl-3.0", "gpl-3.0+", "lgpl-2.0",
    "lgpl-2.0+", "lgpl-2.1", "lgpl-2.1+", "lgpl-3.0", "lgpl-3.0+", "net-snmp", "nunit", "standardml-nj",
    "nokia-qt-exception-1.1",
}


class LicenceExpressionError(ValueError):
    """Not an SPDX licence expression; the message says why (one line)."""


@cache
def spdx_licensing():
    """license-expression's SPDX licensing, built on first use (30 ms: not every run needs it)."""
    return get_spdx_licensing()


@dataclass(frozen=True, slots=True)
class _Known:
    key: str
    is_exception: bool


@cache
def _tables() -> tuple[dict[str, _Known], dict[str, _Known]]:
    """SPDX ids by lower-case spelling: licences and exceptions, then deprecated aliases."""
    ids: dict[str, _Known] = {}
    aliases: dict[str, _Known] = {}
    symbols = set(spdx_licensing().known_symbols.values())
    for symbol in symbols:
        if symbol.key.startswith("LicenseRef-") or symbol.key.lower() in _DEPRECATED_WITH:
            continue
        ids[symbol.key.lower()] = _Known(symbol.key, bool(symbol.is_exception))
    for symbol in symbols:
        if symbol.key.lower() not in ids:
            continue
        for alias in symbol.aliases:
            if alias.lower() in _DEPRECATED and alias.lower() not in ids:
                aliases[alias.lower()] = ids[symbol.key.lower()]
    return ids, aliases


def _lookup(word: str) -> _Known | None:
    ids, aliases = _tables()
    return ids.get(word.lower()) or aliases.get(word.lower())


def canonical_id(word: str) -> str | None:
    """SPDX's spelling of a licence id (case-insensitive, deprecated ids mapped), or None when
    ``word`` is not a licence on SPDX's list (exceptions and ``LicenseRef-`` ids are None)."""
    if not isinstance(word, str) or not _ID.fullmatch(word.rstrip("+")):
        return None
    try:
        leaf = parse(word)
    except LicenceExpressionError:
        return None
    return str(leaf) if isinstance(leaf, Licence) and not leaf.is_ref and not leaf.exception and not leaf.or_later else None


# -- the tree ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Licence:
    """One licence: an SPDX id or a ``LicenseRef-``, perhaps with an exception."""

    id: str
    exception: str | None = None
    is_ref: bool = False
    or_later: bool = False  # "ID+" where SPDX has no ID-or-later

    @property
    def key(self) -> tuple[str, str | None]:
        """What policies match on: the licence and its exception."""
        return self.id, self.exception

    def __str__(self) -> str:
        text = self.id + ("+" if self.or_later else "")
        return f"{text} WITH {self.exception}" if self.exception else text


@dataclass(frozen=True, slots=True)
class And:
    args: tuple

    def __str__(self) -> str:
        return " AND ".join(f"({a})" if isinstance(a, Or) else str(a) for a in self.args)


@dataclass(frozen=True, slots=True)
class Or:
    args: tuple

    def __str__(self) -> str:
        return " OR ".join(f"({a})" if isinstance(a, And) else str(a) for a in self.args)


Expression = Licence | And | Or


# -- parsing -----------------------------------------------------------------------------------


def _tokens(text: str) -> list[str]:
    tokens = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:  # only trailing white space is left
            break
        position = match.end()
        tokens.append(match.group(match.lastindex))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self) -> str | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def operator(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token.upper() == word:
            self.index += 1
            return True
        return False

    def expression(self, depth: int) -> Expression:
        args = [self.conjunction(depth)]
        while self.operator("OR"):
            args.append(self.conjunction(depth))
        return args[0] if len(args) == 1 else Or(tuple(_flatten(args, Or)))

    def conjunction(self, depth: int) -> Expression:
        args = [self.term(depth)]
        while self.operator("AND"):
            args.append(self.term(depth))
        return args[0] if len(args) == 1 else And(tuple(_flatten(args, And)))

    def term(self, depth: int) -> Expression:
        token = self.peek()
        if token is None:
            raise LicenceExpressionError("ends where a licence is expected" if self.tokens else "is empty")
        if token == "(":
            if depth >= MAX_NESTING:
                raise LicenceExpressionError(f"nests parentheses more than {MAX_NESTING} deep")
            self.index += 1
            inner = self.expression(depth + 1)
            if self.peek() != ")":
                raise LicenceExpressionError("has an unclosed '('" if self.peek() is None else f"has {quoted(self.peek())} where ')' is expected")
            self.index += 1
            if self.peek() is not None and self.peek().upper() == "WITH":
                raise LicenceExpressionError("puts WITH after a parenthesis (WITH applies to one licence)")
            return inner
        if token == ")":
            raise LicenceExpressionError("has ')' where a licence is expected")
        if token.upper() in ("AND", "OR", "WITH"):
            raise LicenceExpressionError(f"has {token.upper()} where a licence is expected")
        self.index += 1
        leaf = _licence(token)
        if self.operator("WITH"):
            word = self.peek()
            if word is None or word in "()" or word.upper() in ("AND", "OR", "WITH"):
                raise LicenceExpressionError("has WITH without an exception after it")
            self.index += 1
            if leaf.exception:
                raise LicenceExpressionError(f"gives {leaf.id} (itself {leaf}) a second exception")
            leaf = Licence(leaf.id, _exception(word), leaf.is_ref, leaf.or_later)
        return leaf


def _flatten(args: list, kind: type) -> list:
    out = []
    for arg in args:
        out.extend(arg.args if isinstance(arg, kind) else (arg,))
    return out


def _licence(word: str) -> Licence:
    if _REF.fullmatch(word):
        return Licence(word, is_ref=True)
    if word.upper() in _SPECIAL:
        raise LicenceExpressionError(f"uses {word.upper()} inside an expression (it may only stand alone)")
    plus = word.endswith("+")
    base = word[:-1] if plus else word
    if not _ID.fullmatch(base):
        raise LicenceExpressionError(f"has {quoted(word)}, which is not an SPDX id (letters, digits, '.', '-')")
    if base.lower() in _DEPRECATED_WITH and not plus:
        licence, exception = _DEPRECATED_WITH[base.lower()]
        return Licence(licence, exception)
    known = _lookup(word) if plus else None  # "GPL-2.0+" is itself a deprecated id
    if known is not None:
        return Licence(known.key)
    known = _lookup(base)
    if known is None or base.lower() in _DEPRECATED_WITH:
        raise LicenceExpressionError(f"has {quoted(word)}, which is neither on the SPDX licence list nor a LicenseRef-")
    if known.is_exception:
        raise LicenceExpressionError(f"uses the exception {known.key} as a licence (say LICENCE WITH {known.key})")
    if not plus:
        return Licence(known.key)
    stem = known.key.removesuffix("-only").removesuffix("-or-later")
    later = _lookup(stem + "-or-later")
    if later is not None and not later.is_exception:
        return Licence(later.key)
    return Licence(known.key, or_later=True)


def _exception(word: str) -> str:
    known = _lookup(word) if _ID.fullmatch(word) else None
    if known is None:
        raise LicenceExpressionError(f"has {quoted(word)} after WITH, which is not on the SPDX exception list")
    if not known.is_exception:
        raise LicenceExpressionError(f"uses the licence {known.key} as an exception after WITH")
    return known.key


def parse(text: str) -> Expression:
    """The expression ``text`` means; :class:`LicenceExpressionError` when it is not one.

    ``NOASSERTION`` and ``NONE`` are not expressions: callers that accept them test first.
    Short expressions (all real ones) are cached; long ones, which only crafted documents
    have, are not, so that a document cannot fill the cache with megabytes of trees.
    """
    if isinstance(text, str) and len(text) <= _CACHED_CHARS:
        return _parse_cached(text)
    return _parse(text)


_CACHED_CHARS = 512


@lru_cache(maxsize=8192)
def _parse_cached(text: str) -> Expression:
    return _parse(text)


def _parse(text: str) -> Expression:
    if not isinstance(text, str):
        raise LicenceExpressionError(f"is a {type(text).__name__}, not a string")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise LicenceExpressionError(f"is longer than {MAX_EXPRESSION_CHARS} characters")
    parser = _Parser(text)
    tree = parser.expression(0)
    if parser.peek() is not None:
        token = parser.peek()
        raise LicenceExpressionError("has an unmatched ')'" if token == ")" else f"has {quoted(token)} where AND, OR or the end is expected")
    return tree


def problem(text: str) -> str | None:
    """Why ``text`` is not an SPDX licence expression, as ``licence expression '…' …``; None
    when it is one."""
    try:
        parse(text)
    except LicenceExpressionError as exc:
        return f"licence expression {quoted(text) if isinstance(text, str) else repr(text)} {exc}"
    return None


def normalize(text: str) -> str:
    """The expression in SPDX's spelling (``mit and gpl-2.0+`` -> ``MIT AND GPL-2.0-or-later``)."""
    return str(parse(text))


def leaves(tree: Expression) -> list[Licence]:
    """Every licence of the expression, left to right."""
    if isinstance(tree, Licence):
        return [tree]
    out: list[Licence] = []
    for arg in tree.args:
        out.extend(leaves(arg))
    return out


def satisfiable(tree: Expression, acceptable: Callable[[Licence], bool]) -> bool:
    """Whether the expression can be met using only licences ``acceptable`` accepts: an OR
    needs one acceptable branch, an AND all of its parts."""
    if isinstance(tree, Licence):
        return acceptable(tree)
    if isinstance(tree, And):
        return all(satisfiable(arg, acceptable) for arg in tree.args)
    return any(satisfiable(arg, acceptable) for arg in tree.args)


@dataclass(frozen=True, slots=True)
class LicencePolicy:
    """``[licenses] allow`` and ``deny`` as sets of licences (each a single licence, perhaps
    ``WITH`` an exception).

    * a licence is *allowed* when ``allow`` lists it, or lists its licence without the
      exception (an exception only adds permissions);
    * a licence is *denied* when ``deny`` lists it or its licence without the exception
      (``deny = ["GPL-2.0-only"]`` denies ``GPL-2.0-only WITH Classpath-exception-2.0``),
      unless ``allow`` lists exactly it, exception and all;
    * an expression passes ``deny`` when it can be met with licences that are not denied,
      and ``allow`` when it can be met with licences that are allowed and not denied.
    """

    allow: frozenset[tuple[str, str | None]]
    deny: frozenset[tuple[str, str | None]]

    @classmethod
    def of(cls, allow: list[str], deny: list[str]) -> LicencePolicy:
        return cls(frozenset(policy_entry(a).key for a in allow), frozenset(policy_entry(d).key for d in deny))

    def allowed(self, licence: Licence) -> bool:
        return licence.key in self.allow or (licence.id, None) in self.allow

    def denied(self, licence: Licence) -> bool:
        if licence.exception and licence.key in self.allow:
            return False
        return licence.key in self.deny or (licence.id, None) in self.deny


def policy_entry(text: str) -> Licence:
    """One entry of a policy's ``allow``/``deny``: a licence id, ``ID WITH EXCEPTION`` or a
    ``LicenseRef-``; :class:`LicenceExpressionError` for anything else (an AND/OR expression
    included: list its licences one by one)."""
    tree = parse(text)
    if not isinstance(tree, Licence):
        raise LicenceExpressionError("is an expression with AND/OR: list each licence on its own")
    return tree


# -- nixpkgs meta.license lists ----------------------------------------------------------------


def exception_id(word: object) -> str | None:
    """SPDX's spelling of a licence *exception* named by ``word``: its SPDX id in any case
    (``llvm-exception``), or a nixpkgs short name that is the id without its punctuation
    (``gcc-exception-31`` is ``GCC-exception-3.1``); None for anything else."""
    if not isinstance(word, str) or len(word) > 128:
        return None
    known = _lookup(word) if _ID.fullmatch(word) else None
    if known is not None:
        return known.key if known.is_exception else None
    return _squashed_exceptions().get(_squash(word))


def _squash(word: str) -> str:
    return "".join(ch for ch in word.lower() if ch.isalnum())


@cache
def _squashed_exceptions() -> dict[str, str]:
    ids, _ = _tables()
    table: dict[str, str] = {}
    for known in ids.values():
        if known.is_exception:
            table.setdefault(_squash(known.key), known.key)
    return table


def from_nixpkgs(licences) -> str | None:
    """The SPDX expression a nixpkgs ``meta.license`` list means (docs/sbom.md, "Licences").

    * a list means ``AND``: nixpkgs documents a list as parts of the package being licensed
      differently, so all of them apply;
    * an exception (``llvm-exception``, ``gcc-exception-31``, ``classpathException20``) is not a
      licence: it attaches with ``WITH`` to the nearest licence *before* it in the list that has
      no exception yet, else the nearest one after it; an exception with no licence left to
      modify becomes ``LicenseRef-<id>`` (its name in ``hasExtractedLicensingInfos``), so the
      expression stays valid and the exception is not lost;
    * a licence without an SPDX id is ``LicenseRef-<name>``;
    * repeated terms are written once.

    ``licences`` are :class:`sbomgen.graph.model.License`. The result is checked with
    :func:`parse` and written in SPDX's spelling; None for an empty list."""
    return _from_nixpkgs(tuple(licences))


@lru_cache(maxsize=4096)
def _from_nixpkgs(licences: tuple) -> str | None:
    slots: list[list] = []  # [licence ref text, exception or None, position]
    pending: list[tuple[int, str]] = []
    for position, lic in enumerate(licences):
        if lic.exception and lic.spdx_id:
            pending.append((position, lic.spdx_id))
        elif lic.expression:
            slots.append([f"({lic.expression})" if " " in lic.expression else lic.expression, None, position, True])
        else:
            slots.append([lic.ref, None, position, False])
    for position, exception in pending:
        free = [slot for slot in slots if slot[1] is None and not slot[3]]
        before = [slot for slot in free if slot[2] < position]
        after = [slot for slot in free if slot[2] > position]
        if before:
            before[-1][1] = exception
        elif after:
            after[0][1] = exception
        else:
            slots.append([orphan_exception_ref(exception), None, position, False])
    slots.sort(key=lambda slot: slot[2])
    terms = [f"{ref} WITH {exception}" if exception else ref for ref, exception, _, _ in slots]
    if not terms:
        return None
    return str(parse(" AND ".join(dict.fromkeys(terms))))


def orphan_exception_ref(exception: str) -> str:
    """The ``LicenseRef-`` of an exception listed without a licence it could modify."""
    return f"LicenseRef-{exception}"
