"""Strings from inputs, made safe for one line of a message or a terminal.

Names, paths, tags, licence expressions and library error messages may come from an image or a
document someone else wrote. Every message that carries one goes through these three functions,
so that no control character reaches the terminal and no message spans lines or pages.
"""

from __future__ import annotations

import re

#: C0 controls (but tab and newline), DEL, C1 controls, the bidirectional overrides and
#: isolates ("Trojan Source"), line/paragraph separators, and the lone surrogates that
#: undecodable file names become: none of them is printed raw.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape'd byte of an undecodable name
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, newlines: bool = True) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``, ``\\u202e``), so
    that a name from an image or SBOM cannot move the cursor, recolour, retitle or rewrite the
    terminal. Tabs stay; newlines stay unless ``newlines`` is false (one-line messages)."""
    text = str(text)
    if not newlines:
        text = text.replace("\r\n", "\n").replace("\n", " ")
    return _UNSAFE.sub(_visible, text)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def one_line(value: object, limit: int = 300) -> str:
    """A message (often a library's, quoting a whole input) as part of one line: white space
    collapsed, control characters escaped, cut to ``limit`` characters."""
    return _cut(printable(" ".join(str(value).split())), limit)


def quoted(value: object, limit: int = 80) -> str:
    """A value from an input, quoted and escaped for a message (control characters, newlines and
    non-ASCII as Python escapes: ``'a\\x1bb'``), cut to ``limit`` characters."""
    return _cut(ascii(value), limit)
