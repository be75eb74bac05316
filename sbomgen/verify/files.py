"""Comparing bytes: a file's SHA-256 first; then a bounded text diff, or the first differing offset."""

from __future__ import annotations

import difflib
import hashlib
import os
from collections.abc import Iterable

from sbomgen.verify.compression import open_regular
from sbomgen.verify.hints import lines_cause, text_cause
from sbomgen.verify.model import Difference, Kind

CHUNK = 1 << 20
#: Texts up to this size get a line diff; larger ones, and binaries, their first differing offset.
TEXT_LIMIT = 1 << 20
DIFF_LINES = 40
#: lines that differ (after the common head and tail) beyond which no line diff is computed:
#: difflib is quadratic in the worst case
DIFF_WINDOW = 2000
#: a value or diff line shown in a report is cut at this many characters
SHOWN_CHARS = 200


def clip(text: str | None, limit: int = SHOWN_CHARS) -> str | None:
    """``text`` cut to ``limit`` characters (a report line, not a copy of the input)."""
    if text is None or len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def streams_equal(left, right, hasher=None) -> bool:
    """Whether two binary streams hold the same bytes, compared chunk by chunk (stops at the
    first difference); ``hasher`` (e.g. a sha256) is fed the left side's bytes on the way."""
    lbuf, rbuf = bytearray(CHUNK), bytearray(CHUNK)
    lview, rview = memoryview(lbuf), memoryview(rbuf)
    while True:
        ln = _fill(left, lview, CHUNK)
        rn = _fill(right, rview, CHUNK)
        if ln != rn:
            return False
        # whole buffers compare with memcmp; memoryview slices compare far slower
        if (lbuf != rbuf) if ln == CHUNK else (lbuf[:ln] != rbuf[:rn]):
            return False
        if not ln:
            return True
        if hasher is not None:
            hasher.update(lview[:ln])


def _fill(stream, view: memoryview, want: int) -> int:
    """Read exactly ``want`` bytes unless the stream ends first."""
    got = 0
    while got < want:
        n = stream.readinto(view[got:want])
        if not n:
            break
        got += n
    return got


def files_equal(left: str, right: str, follow: bool = True) -> bool:
    """Byte-for-byte equality of two files: sizes first, then a chunked comparison (no hashing:
    at about three times the speed of SHA-256 here)."""
    with open_regular(left, follow) as lf, open_regular(right, follow) as rf:
        if os.fstat(lf.fileno()).st_size != os.fstat(rf.fileno()).st_size:
            return False
        return streams_equal(lf.raw, rf.raw)


def sha256_file(path: str, follow: bool = True) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open_regular(path, follow) as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def is_text(data: bytes) -> bool:
    if b"\0" in data[:8192]:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def first_difference(left: Iterable[bytes], right: Iterable[bytes]) -> int | None:
    """Offset of the first differing byte of two chunk streams (None when equal)."""
    offset = 0
    lbuf = rbuf = b""
    liter, riter = iter(left), iter(right)
    while True:
        if not lbuf:
            lbuf = next(liter, b"")
        if not rbuf:
            rbuf = next(riter, b"")
        if not lbuf or not rbuf:
            return None if lbuf == rbuf else offset
        n = min(len(lbuf), len(rbuf))
        if lbuf[:n] != rbuf[:n]:
            return offset + next(i for i in range(n) if lbuf[i] != rbuf[i])
        offset += n
        lbuf, rbuf = lbuf[n:], rbuf[n:]


def chunks(path: str, follow: bool = True) -> Iterable[bytes]:
    with open_regular(path, follow) as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def _line_diff(label: str, a: list[str], b: list[str]) -> list[str] | None:
    """A unified diff (1 line of context) of two line lists; None when the differing middle is
    too long to diff in bounded time."""
    head = 0
    while head < len(a) and head < len(b) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < len(a) - head and tail < len(b) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    amid, bmid = a[head:len(a) - tail], b[head:len(b) - tail]
    if len(amid) > DIFF_WINDOW or len(bmid) > DIFF_WINDOW:
        return None
    start = max(0, head - 1)  # one line of context before, one after
    awin, bwin = a[start:len(a) - tail + (1 if tail else 0)], b[start:len(b) - tail + (1 if tail else 0)]
    out = [f"--- a/{label}", f"+++ b/{label}"]
    matcher = difflib.SequenceMatcher(None, awin, bwin, autojunk=False)
    for group in matcher.get_grouped_opcodes(1):
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        out.append(f"@@ -{start + i1 + 1},{i2 - i1} +{start + j1 + 1},{j2 - j1} @@")
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                out.extend(" " + line for line in awin[a1:a2])
                continue
            out.extend("-" + line for line in awin[a1:a2])
            out.extend("+" + line for line in bwin[b1:b2])
    return out


def describe_bytes(label: str, left: bytes, right: bytes) -> Difference:
    """A content difference between two in-memory byte strings (each at most TEXT_LIMIT), as
    helpful as it can be in bounded time and report size."""
    if is_text(left) and is_text(right):
        diff = _line_diff(label, left.decode().splitlines(), right.decode().splitlines())
        if diff is not None:
            removed = [line[1:] for line in diff[2:] if line.startswith("-")]
            added = [line[1:] for line in diff[2:] if line.startswith("+")]
            short = all(len(line) < 4096 for line in removed + added)
            cause = (lines_cause(removed, added) if short else None) or (
                text_cause(left.decode(), right.decode()) if len(left) < 4096 and len(right) < 4096 else None)
            shown = [clip(line) for line in diff[:DIFF_LINES]] + (
                [f"... {len(diff) - DIFF_LINES} more diff lines"] if len(diff) > DIFF_LINES else [])
            return Difference(label, Kind.CONTENT, clip(removed[0]) if removed else None, clip(added[0]) if added else None,
                              "\n".join(shown), cause)
    offset = first_difference([left], [right])
    kind = "binary" if not (is_text(left) and is_text(right)) else "text (too many changed lines for a line diff)"
    return Difference(label, Kind.CONTENT, f"{len(left)} bytes", f"{len(right)} bytes", f"{kind}; first difference at byte {offset}")


def compare_file_contents(
    label: str, left: str, right: str, hashes: tuple[tuple[str, int], tuple[str, int]] | None = None, follow: bool = True
) -> Difference | None:
    """Compare two regular files on disk; None when their bytes are equal.

    ``hashes``: ``sha256_file`` of both, when the caller has them already; ``follow=False``
    (inside a tree): a file that became a symlink is an error, not followed.
    """
    if files_equal(left, right, follow):
        return None
    (lhash, lsize), (rhash, rsize) = hashes or (sha256_file(left, follow), sha256_file(right, follow))
    if lsize <= TEXT_LIMIT and rsize <= TEXT_LIMIT:
        with open_regular(left, follow) as lf, open_regular(right, follow) as rf:
            diff = describe_bytes(label, lf.read(TEXT_LIMIT), rf.read(TEXT_LIMIT))
        if diff.kind is Kind.CONTENT and diff.detail and not diff.detail.startswith(("binary", "text (")):
            return diff
    offset = first_difference(chunks(left, follow), chunks(right, follow))
    return Difference(
        label, Kind.CONTENT, f"sha256:{lhash} ({lsize} bytes)", f"sha256:{rhash} ({rsize} bytes)",
        f"first difference at byte {offset}",
    )
