"""Guessing why two values differ: timestamps, build paths, store path hashes.

Each test normalises both sides (replacing what it recognises by a placeholder) and reports
its cause when the normalised values are then equal: a line that differs only in a date is a
timestamp difference, whatever else it says.
"""

from __future__ import annotations

import re
import time

from sbomgen.verify.model import Cause

_ISO = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?"
_CLOCK = r"\b\d{1,2}:\d{2}:\d{2}\b"
_DATE_WORDS = r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun)\w*\b|\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\w*\b"
_EPOCH = r"\b1[0-9]{9}(\d{3}(\d{3}(\d{3})?)?)?\b"  # seconds (2001..2286), ms, us, ns
_TIMESTAMP = re.compile("|".join([_ISO, _CLOCK, _DATE_WORDS, _EPOCH]))
_STORE_HASH = re.compile(r"(/[^\s\"':]*?/store/)[0-9a-df-np-sv-z]{32}-")
_BUILD_PATH = re.compile(
    r"/build/[\w.+-]+|/tmp/nix-build-[\w.+-]+|/tmp/tmp[\w.]+|/tmp/[\w]*\.[A-Za-z0-9]{6,}|"
    r"/private/var/folders/[\w/+-]+|/var/folders/[\w/+-]+|/tmp/pytest-of-[\w/-]+"
)

_NORMALISERS = (
    (Cause.TIMESTAMP, lambda s: _TIMESTAMP.sub("<time>", s)),
    (Cause.STORE_PATH_HASH, lambda s: _STORE_HASH.sub(r"\1<hash>-", s)),
    (Cause.BUILD_PATH, lambda s: _BUILD_PATH.sub("<build>", s)),
)


def text_cause(before: str, after: str) -> Cause | None:
    """The single cause that explains a difference between two texts, if there is one."""
    if before == after:
        return None
    for cause, normalise in _NORMALISERS:
        if normalise(before) == normalise(after):
            return cause
    # several causes at once: report the first that is present at all
    all_normalised = [before, after]
    for _cause, normalise in _NORMALISERS:
        all_normalised = [normalise(x) for x in all_normalised]
    if all_normalised[0] == all_normalised[1]:
        for cause, normalise in _NORMALISERS:
            if normalise(before) != before or normalise(after) != after:
                return cause
    return None


def lines_cause(before: list[str], after: list[str]) -> Cause | None:
    """A cause that explains every changed line pair (same number of lines on both sides)."""
    if len(before) != len(after) or not before:
        return None
    causes = {text_cause(a, b) for a, b in zip(before, after, strict=False) if a != b}
    return causes.pop() if len(causes) == 1 and None not in causes else None


def looks_like_timestamp(value: object) -> bool:
    """An epoch (seconds, near the present) or an ISO date."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return 946684800 <= value <= time.time() + 10 * 365 * 86400
    return isinstance(value, str) and bool(re.fullmatch(_ISO, value.strip()))


def value_cause(before: object, after: object) -> Cause | None:
    if looks_like_timestamp(before) and looks_like_timestamp(after):
        return Cause.TIMESTAMP
    if isinstance(before, str) and isinstance(after, str):
        return text_cause(before, after)
    return None
