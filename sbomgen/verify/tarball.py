"""Comparing tar archives (plain, gzip, zstd): entry order, names, mode, owner, mtime, links, content.

Streaming and bounded in memory: one pass over each archive records every entry's metadata
and the SHA-256 of its content; only the entries whose content differs and that are small
enough for a text diff are read again.  The gzip header (mtime, OS byte, name) is compared on
its own, and a difference only in the compressed bytes is reported as compression-only.
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import BinaryIO

from sbomgen.errors import ArchiveError
from sbomgen.verify.compression import STREAM_ERRORS, HashingReader, gzip_header, open_decompressed, sniff
from sbomgen.verify.files import TEXT_LIMIT, describe_bytes, files_equal, sha256_file
from sbomgen.verify.hints import text_cause
from sbomgen.verify.model import Cause, Comparison, Difference, Kind

_TYPES = {
    tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.DIRTYPE: "directory", tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hardlink", tarfile.CHRTYPE: "char-device", tarfile.BLKTYPE: "block-device", tarfile.FIFOTYPE: "fifo",
}

Opener = Callable[[], AbstractContextManager[BinaryIO]]


@dataclass(frozen=True, slots=True)
class Member:
    index: int
    name: str
    type: str
    mode: int
    uid: int
    gid: int
    uname: str
    gname: str
    mtime: float
    linkname: str
    size: int
    sha256: str


def read_members(stream: BinaryIO, source: str) -> tuple[list[Member], str]:
    """Every entry of the tar stream, and the SHA-256 of the whole (decompressed) tar."""
    reader = HashingReader(stream)
    members: list[Member] = []
    try:
        with tarfile.open(fileobj=reader, mode="r|") as archive:
            for index, info in enumerate(archive):
                digest = ""
                if info.isreg():
                    hasher = hashlib.sha256()
                    handle = archive.extractfile(info)
                    while chunk := handle.read(1 << 20):
                        hasher.update(chunk)
                    digest = hasher.hexdigest()
                members.append(
                    Member(index, info.name, _TYPES.get(info.type, f"type-{info.type!r}"), info.mode, info.uid, info.gid,
                           info.uname, info.gname, info.mtime, info.linkname, info.size, digest)
                )
        return members, reader.drain()
    except tarfile.ReadError as exc:
        raise ArchiveError(f"{source}: not a tar archive, or truncated ({exc})") from None
    except STREAM_ERRORS as exc:
        raise ArchiveError(f"{source}: truncated or corrupt ({type(exc).__name__}: {exc})") from None


def _contents(opener: Opener, names: set[str], source: str) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    try:
        with opener() as stream, tarfile.open(fileobj=stream, mode="r|") as archive:
            for info in archive:
                if info.name in names and info.isreg():
                    found[info.name] = archive.extractfile(info).read()
    except (tarfile.ReadError, *STREAM_ERRORS) as exc:
        raise ArchiveError(f"{source}: truncated or corrupt ({exc})") from None
    return found


def _order_difference(left: list[Member], right: list[Member], common: set[str], label: str) -> Difference | None:
    lorder = [m.name for m in left if m.name in common]
    rorder = [m.name for m in right if m.name in common]
    if lorder == rorder:
        return None
    first = next(i for i, (a, b) in enumerate(zip(lorder, rorder)) if a != b)
    window = slice(first, first + 3)
    return Difference(
        label or ".", Kind.ORDER, ", ".join(lorder[window]), ", ".join(rorder[window]),
        f"entries in another order from entry {first}", Cause.ORDERING,
    )


def compare_members(
    left: list[Member], right: list[Member], label: str, comparison: Comparison,
    open_left: Opener | None = None, open_right: Opener | None = None,
) -> None:
    lby, rby = {m.name: m for m in left}, {m.name: m for m in right}
    for name in sorted(lby.keys() - rby.keys()):
        comparison.add(Difference(label + name, Kind.MISSING, lby[name].type, None))
    for name in sorted(rby.keys() - lby.keys()):
        comparison.add(Difference(label + name, Kind.EXTRA, None, rby[name].type))
    common = lby.keys() & rby.keys()
    order = _order_difference(left, right, common, label)
    if order:
        comparison.add(order)
    details: dict[str, tuple[Member, Member]] = {}
    for name in sorted(common):
        a, b = lby[name], rby[name]
        where = label + name
        if a.type != b.type:
            comparison.add(Difference(where, Kind.TYPE, a.type, b.type))
            continue
        if a.mode != b.mode:
            comparison.add(Difference(where, Kind.MODE, oct(a.mode), oct(b.mode), cause=Cause.PERMISSIONS))
        if (a.uid, a.gid, a.uname, a.gname) != (b.uid, b.gid, b.uname, b.gname):
            comparison.add(Difference(where, Kind.OWNER, f"{a.uid}:{a.gid} {a.uname}:{a.gname}", f"{b.uid}:{b.gid} {b.uname}:{b.gname}"))
        if a.mtime != b.mtime:
            comparison.add(Difference(where, Kind.MTIME, str(int(a.mtime)), str(int(b.mtime)), cause=Cause.TIMESTAMP))
        if a.linkname != b.linkname:
            comparison.add(Difference(where, Kind.SYMLINK, a.linkname, b.linkname, cause=text_cause(a.linkname, b.linkname)))
        if a.sha256 != b.sha256:
            if a.size <= TEXT_LIMIT and b.size <= TEXT_LIMIT and open_left and open_right:
                details[name] = (a, b)
            else:
                comparison.add(
                    Difference(where, Kind.CONTENT, f"sha256:{a.sha256} ({a.size} bytes)", f"sha256:{b.sha256} ({b.size} bytes)")
                )
    if details:
        lbytes = _contents(open_left, set(details), comparison.left)
        rbytes = _contents(open_right, set(details), comparison.right)
        for name in sorted(details):
            comparison.add(describe_bytes(label + name, lbytes.get(name, b""), rbytes.get(name, b"")))


def compare_tar_files(left: str, right: str, comparison: Comparison, label: str = "") -> None:
    """Compare two tar files, each plain, gzip- or zstd-compressed."""
    if files_equal(left, right):
        return
    lhash, _ = sha256_file(left)
    rhash, _ = sha256_file(right)
    lkind, rkind = sniff(left), sniff(right)
    if lkind != rkind:
        comparison.add(Difference(label or ".", Kind.COMPRESSION, lkind, rkind, "different compression", Cause.COMPRESSION))
    elif lkind == "gzip":
        lhead, rhead = gzip_header(left), gzip_header(right)
        for field in ("mtime", "os", "xfl", "name"):
            if lhead[field] != rhead[field]:
                cause = Cause.TIMESTAMP if field == "mtime" else Cause.COMPRESSION
                comparison.add(Difference(f"{label or '.'} (gzip header {field})", Kind.GZIP_HEADER, lhead[field], rhead[field], cause=cause))
    with open_decompressed(left) as stream:
        lmembers, lpayload = read_members(stream, left)
    with open_decompressed(right) as stream:
        rmembers, rpayload = read_members(stream, right)
    if lpayload == rpayload:
        if not any(d.kind in (Kind.GZIP_HEADER, Kind.COMPRESSION) for d in comparison.differences):
            comparison.add(Difference(label or ".", Kind.COMPRESSION, f"sha256:{lhash}", f"sha256:{rhash}",
                                      "compressed bytes differ, the tar inside is identical", Cause.COMPRESSION))
        return
    before = len(comparison.differences)
    compare_members(lmembers, rmembers, label, comparison, lambda: open_decompressed(left), lambda: open_decompressed(right))
    if len(comparison.differences) == before:
        comparison.add(Difference(label or ".", Kind.CONTENT, f"sha256:{lpayload}", f"sha256:{rpayload}",
                                  "same entries, but the tar streams differ (padding or headers)"))
