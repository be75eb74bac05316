"""Policies for ``sbomgen check``: a TOML file of rules, each an error or a warning.

See docs/ci.md for the format. Mistakes in the file are reported with their line number:
TOML syntax errors as tomllib reports them, unknown tables/keys and wrong value types by
finding the key's line in the text.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from sbomgen.errors import SbomgenError
from sbomgen.graph import licensing
from sbomgen.text import quoted

LEVELS = ("error", "warning")


class PolicyError(SbomgenError):
    exit_code = 2


@dataclass(slots=True)
class DenyRule:
    name: str
    versions: str  # "" = every version; else comma-separated comparisons: "<3.0.7", ">=1.0,<2.0"
    reason: str
    level: str


@dataclass(slots=True)
class Policy:
    path: str
    allow_licenses: list[str] = field(default_factory=list)
    deny_licenses: list[str] = field(default_factory=list)
    license_level: str = "error"
    deny: list[DenyRule] = field(default_factory=list)
    require: dict[str, str] = field(default_factory=dict)  # "digest"/"purl"/"license"/"supplier" -> level
    max_components: int | None = None
    closure_level: str = "error"
    provenance_required: bool = False
    provenance_file: str | None = None
    provenance_level: str = "error"
    provenance_keys: list[str] = field(default_factory=list)  # public keys (paths) an envelope must verify with
    provenance_require_signature: bool | None = None  # None: required when a key is given
    reproducible: bool = False
    reproducible_level: str = "error"
    fixed_hash_fetches: bool = False
    fetches_level: str = "error"


_SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "licenses": {"allow": list, "deny": list, "level": str},
    "require": {"digest": str, "purl": str, "license": str, "supplier": str},
    "closure": {"max_components": int, "level": str},
    "provenance": {"required": bool, "file": str, "level": str, "key": str, "require_signature": bool},
    "reproducible": {"required": bool, "level": str},
    "fetches": {"require_fixed_hash": bool, "level": str},
}
_DENY_KEYS = {"name": str, "versions": str, "reason": str, "level": str}


def _line_of(text: str, key: str, table: str | None = None) -> int:
    """The line where ``key`` (within ``[table]`` when given) is set, for error messages."""
    lines = text.splitlines()
    start = 0
    if table:
        for number, line in enumerate(lines):
            if re.match(rf"\s*\[+\s*{re.escape(table)}\s*\]+", line):
                start = number
                break
    for number in range(start, len(lines)):
        if re.match(rf"\s*\[*\s*\"?{re.escape(key)}\"?\s*[=\]]", lines[number]):
            return number + 1
    return start + 1


def _level(value: Any, text: str, key: str, table: str) -> str:
    if value not in LEVELS:
        raise PolicyError(f"line {_line_of(text, key, table)}: {table}.{key} must be \"error\" or \"warning\", not {quoted(value)}")
    return value


def _read(path: str) -> bytes:
    """The policy's bytes: a regular file (a FIFO or device would block or never end), no
    larger than ``limits.current().max_document_bytes``."""
    from sbomgen.gate.documents import DocumentError, read_document

    try:
        return read_document(path, "policy")
    except DocumentError as exc:
        raise PolicyError(str(exc).replace("cannot read ", "cannot read policy ", 1)) from None


def load_policy(path: str) -> Policy:
    """The policy in ``path``; :class:`PolicyError` (exit 2) naming the line of the first
    mistake. A user's own policy is trusted for what it asks, not for being well-formed."""
    text = _read(path).decode("utf-8", errors="replace")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path}: {exc}") from None  # tomllib says "(at line N, column M)"
    except RecursionError:
        raise PolicyError(f"{path}: not a policy: arrays or tables nested too deeply") from None
    policy = Policy(path)
    for table, value in data.items():
        if table == "deny":
            if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
                raise PolicyError(f"{path}: line {_line_of(text, 'deny')}: deny must be an array of tables ([[deny]])")
            for entry in value:
                for key, item in entry.items():
                    if key not in _DENY_KEYS:
                        raise PolicyError(f"{path}: line {_line_of(text, key, 'deny')}: unknown key deny.{key} (known: {', '.join(_DENY_KEYS)})")
                    if not isinstance(item, _DENY_KEYS[key]):
                        raise PolicyError(f"{path}: line {_line_of(text, key, 'deny')}: deny.{key} must be a {_DENY_KEYS[key].__name__}")
                if "name" not in entry:
                    raise PolicyError(f"{path}: line {_line_of(text, 'deny')}: every [[deny]] needs a name")
                versions = entry.get("versions", "")
                try:
                    parse_range(versions)
                except ValueError as exc:
                    raise PolicyError(f"{path}: line {_line_of(text, 'versions', 'deny')}: {exc}") from None
                policy.deny.append(DenyRule(entry["name"], versions, entry.get("reason", ""), _level(entry.get("level", "error"), text, "level", "deny")))
            continue
        if table not in _SCHEMA:
            raise PolicyError(f"{path}: line {_line_of(text, table)}: unknown table [{table}] (known: {', '.join([*_SCHEMA, 'deny'])})")
        if not isinstance(value, dict):
            raise PolicyError(f"{path}: line {_line_of(text, table)}: [{table}] must be a table")
        for key, item in value.items():
            expected = _SCHEMA[table].get(key)
            if expected is None:
                raise PolicyError(f"{path}: line {_line_of(text, key, table)}: unknown key {table}.{key} (known: {', '.join(_SCHEMA[table])})")
            if not isinstance(item, expected) or (expected is int and isinstance(item, bool)):
                raise PolicyError(f"{path}: line {_line_of(text, key, table)}: {table}.{key} must be a {expected.__name__}")
        where = lambda key, table=table: f"{path}: line {_line_of(text, key, table)}"  # noqa: E731
        if table == "licenses":
            for key in ("allow", "deny"):
                for lic in value.get(key, []):
                    if not isinstance(lic, str):
                        raise PolicyError(f"{where(key)}: licenses.{key} must list strings, not {quoted(lic)}")
                    try:
                        licensing.policy_entry(lic)
                    except licensing.LicenceExpressionError as exc:
                        raise PolicyError(
                            f"{where(key)}: licenses.{key}: {quoted(lic)} is not an SPDX licence id, ID WITH EXCEPTION or LicenseRef- (it {exc})"
                        ) from None
            policy.allow_licenses = list(value.get("allow", []))
            policy.deny_licenses = list(value.get("deny", []))
            policy.license_level = _level(value.get("level", "error"), text, "level", table)
        elif table == "require":
            policy.require = {key: _level(level, text, key, table) for key, level in value.items()}
        elif table == "closure":
            policy.max_components = value.get("max_components")
            if policy.max_components is not None and policy.max_components < 0:
                raise PolicyError(f"{where('max_components')}: closure.max_components must not be negative")
            policy.closure_level = _level(value.get("level", "error"), text, "level", table)
        elif table == "provenance":
            policy.provenance_required = value.get("required", True)
            policy.provenance_file = value.get("file")
            policy.provenance_level = _level(value.get("level", "error"), text, "level", table)
            if "key" in value:  # relative to the policy file, like a path the user typed next to it
                policy.provenance_keys = [os.path.join(os.path.dirname(os.path.abspath(path)), os.path.expanduser(value["key"]))]
            policy.provenance_require_signature = value.get("require_signature")
        elif table == "reproducible":
            policy.reproducible = value.get("required", True)
            policy.reproducible_level = _level(value.get("level", "error"), text, "level", table)
        elif table == "fetches":
            policy.fixed_hash_fetches = value.get("require_fixed_hash", True)
            policy.fetches_level = _level(value.get("level", "error"), text, "level", table)
    return policy


# -- versions: Nix's builtins.compareVersions --------------------------------------------------

_COMPONENT = re.compile(r"[0-9]+|[^0-9.\-]+")


def _components(version: str) -> list[str]:
    return _COMPONENT.findall(version)


def _numeric(text: str) -> bool:
    return text != "" and text.isascii() and text.isdigit()


def _number_lt(a: str, b: str) -> bool:
    """``int(a) < int(b)`` for ASCII digit strings of any length (``int()`` refuses more than
    4,300 digits, and a version from elsewhere may have more)."""
    a, b = a.lstrip("0"), b.lstrip("0")
    return (len(a), a) < (len(b), b)


def _component_lt(a: str, b: str) -> bool:
    if _numeric(a) and _numeric(b):
        return _number_lt(a, b)
    if a == "" and _numeric(b):
        return True
    if a == "pre" and b != "pre":
        return True
    if b == "pre":
        return False
    if _numeric(b):
        return True
    if _numeric(a):
        return False
    return a < b


def compare_versions(a: str, b: str) -> int:
    """Exactly ``builtins.compareVersions``: -1, 0 or 1."""
    ca, cb = _components(a), _components(b)
    for index in range(max(len(ca), len(cb))):
        x = ca[index] if index < len(ca) else ""
        y = cb[index] if index < len(cb) else ""
        if _component_lt(x, y):
            return -1
        if _component_lt(y, x):
            return 1
    return 0


_OPS = {"<": lambda c: c < 0, "<=": lambda c: c <= 0, ">": lambda c: c > 0, ">=": lambda c: c >= 0, "==": lambda c: c == 0, "!=": lambda c: c != 0}


def parse_range(spec: str) -> list[tuple[str, str]]:
    clauses = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        match = re.fullmatch(r"(<=|>=|==|!=|<|>)\s*(\S+)", part)
        if not match:
            raise ValueError(f"bad version range {spec!r}: each part is OP VERSION with OP one of <, <=, >, >=, ==, !=")
        clauses.append((match.group(1), match.group(2)))
    return clauses


def in_range(version: str, spec: str) -> bool:
    return all(_OPS[op](compare_versions(version, bound)) for op, bound in parse_range(spec))
