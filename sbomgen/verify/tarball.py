"""Comparing tar archives (plain, gzip, zstd): entry order, names, type, mode, owner, mtime,
links, device numbers, pax headers, content.

Streaming and bounded in memory: one pass over each archive records every entry's metadata
and the SHA-256 of its content (never the content); the entries whose content differs and
that are small enough for a text diff are read again, a batch of at most ``BATCH_BYTES`` at a
time.  Every decompressed byte and every entry is charged to a :class:`~sbomgen.limits.Budget`.
The gzip header is compared on its own, and a difference only in the compressed bytes is
reported as compression-only: two archives are identical only when their bytes are.

Names are labels, never paths: nothing is extracted, so ``..``, absolute names and links
mean nothing here but what they say.
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from sbomgen.errors import ArchiveError
from sbomgen.limits import Budget
from sbomgen.verify.compression import TAR_ERRORS, HashingReader, gzip_header, open_decompressed, sniff
from sbomgen.verify.files import TEXT_LIMIT, clip, describe_bytes, files_equal, sha256_file
from sbomgen.verify.hints import text_cause
from sbomgen.verify.model import Cause, Comparison, Difference, Kind

_TYPES = {
    tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.DIRTYPE: "directory", tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hardlink", tarfile.CHRTYPE: "char-device", tarfile.BLKTYPE: "block-device", tarfile.FIFOTYPE: "fifo",
    tarfile.CONTTYPE: "contiguous-file", tarfile.GNUTYPE_SPARSE: "sparse-file",
}
#: pax header keys that tarfile turns into member fields (compared as those fields)
_PAX_FIELDS = {"path", "linkpath", "size", "mtime", "uid", "gid", "uname", "gname"}
#: content read again for text diffs in one batch (each entry is at most TEXT_LIMIT)
BATCH_BYTES = 32 << 20
#: differing entries that get a text diff; the others are reported by hash and size
MAX_TEXT_DIFFS = 256

Opener = Callable[[], AbstractContextManager[BinaryIO]]


@dataclass(frozen=True, slots=True)
class Member:
    index: int
    key: str  # the name, with "#N" for its N-th repetition in the archive
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
    device: tuple[int, int]
    pax: tuple[tuple[str, str], ...]


@contextmanager
def _malformed_is_archive_error(source: str) -> Iterator[None]:
    """Whatever parsing an untrusted tar raises (tarfile, zlib, a bad number) is an ArchiveError."""
    try:
        yield
    except TAR_ERRORS as exc:
        raise ArchiveError(f"{source}: not a tar archive, or truncated or corrupt ({type(exc).__name__}: {exc})") from None


class _TruncatedOrCorrupt(tarfile.TarError):
    pass


class _StrictTarInfo(tarfile.TarInfo):
    """tarfile takes a corrupt or cut header after the first member for the end of the
    archive, so a damaged tar would read as a shorter one: here it is an error.  Only a zero
    block ends an archive."""

    @classmethod
    def fromtarfile(cls, tarfile_):
        try:
            return super().fromtarfile(tarfile_)
        except (tarfile.InvalidHeaderError, tarfile.TruncatedHeaderError) as exc:
            raise _TruncatedOrCorrupt(f"bad header at byte {tarfile_.offset}: {exc}") from None
        except tarfile.EmptyHeaderError:
            if tarfile_.offset == 0:
                raise
            raise _TruncatedOrCorrupt(f"it stops at byte {tarfile_.offset} without its end-of-archive blocks") from None


def _key(seen: dict[str, int], name: str) -> str:
    count = seen.get(name, 0) + 1
    seen[name] = count
    return name if count == 1 else f"{name}#{count}"


def _members(stream: BinaryIO, source: str, budget: Budget | None) -> Iterator[tuple[str, tarfile.TarInfo, tarfile.TarFile]]:
    """(key, info, archive) for each entry of a tar stream; malformed input is an ArchiveError."""
    seen: dict[str, int] = {}
    try:
        with tarfile.open(fileobj=stream, mode="r|", tarinfo=_StrictTarInfo) as archive:
            while (info := archive.next()) is not None:
                archive.members.clear()  # tarfile keeps every header it read: memory would grow with the entries
                if budget is not None:
                    budget.add_member()
                yield _key(seen, info.name), info, archive
    except TAR_ERRORS as exc:
        raise ArchiveError(f"{source}: not a tar archive, or truncated or corrupt ({type(exc).__name__}: {exc})") from None


def read_members(stream: BinaryIO, source: str, budget: Budget | None = None,
                 skip_content: frozenset[str] = frozenset(), hash_payload: bool = True) -> tuple[list[Member], str]:
    """Every entry of the tar stream, and the SHA-256 of the whole (decompressed) tar,
    trailing bytes after the end-of-archive blocks included ("" unless ``hash_payload``).
    Entries named in ``skip_content`` are read over without hashing (someone else compares them)."""
    with _malformed_is_archive_error(source):
        return _read_members(stream, source, budget, skip_content, hash_payload)


def _read_members(stream: BinaryIO, source: str, budget: Budget | None, skip_content: frozenset[str],
                  hash_payload: bool) -> tuple[list[Member], str]:
    reader = HashingReader(stream) if hash_payload else stream
    members: list[Member] = []
    for key, info, archive in _members(reader, source, budget):  # type: ignore[arg-type]
        digest = ""
        if info.isreg() and key.removeprefix("./") not in skip_content:
            hasher = hashlib.sha256()
            handle = archive.extractfile(info)
            while chunk := handle.read(1 << 20):  # type: ignore[union-attr]
                hasher.update(chunk)
            digest = hasher.hexdigest()
        pax = tuple(sorted((k, clip(str(v), 1000) or "") for k, v in info.pax_headers.items() if k not in _PAX_FIELDS))
        members.append(
            Member(len(members), key, info.name, _TYPES.get(info.type, f"type-{info.type!r}"), info.mode, info.uid, info.gid,
                   info.uname, info.gname, info.mtime, info.linkname, info.size, digest,
                   (info.devmajor, info.devminor) if info.ischr() or info.isblk() else (0, 0), pax)
        )
    if not hash_payload:
        while reader.read(1 << 20):  # trailing bytes still count against the budget
            pass
        return members, ""
    return members, reader.drain()  # type: ignore[union-attr]


def _order_difference(left: list[Member], right: list[Member], common: set[str], label: str) -> Difference | None:
    lorder = [m.key for m in left if m.key in common]
    rorder = [m.key for m in right if m.key in common]
    if lorder == rorder:
        return None
    first = next(i for i, (a, b) in enumerate(zip(lorder, rorder, strict=False)) if a != b)
    window = slice(first, first + 3)
    return Difference(
        label or ".", Kind.ORDER, clip(", ".join(lorder[window])), clip(", ".join(rorder[window])),
        f"entries in another order from entry {first}", Cause.ORDERING,
    )


def compare_members(
    left: list[Member], right: list[Member], label: str, comparison: Comparison,
    open_left: Opener | None = None, open_right: Opener | None = None,
) -> None:
    lby, rby = {m.key: m for m in left}, {m.key: m for m in right}
    for key in sorted(lby.keys() - rby.keys()):
        comparison.add(Difference(label + key, Kind.MISSING, lby[key].type, None))
    for key in sorted(rby.keys() - lby.keys()):
        comparison.add(Difference(label + key, Kind.EXTRA, None, rby[key].type))
    common = lby.keys() & rby.keys()
    order = _order_difference(left, right, common, label)
    if order:
        comparison.add(order)
    details: list[tuple[Member, Member]] = []
    for key in sorted(common):
        a, b = lby[key], rby[key]
        where = label + key
        if a.type != b.type:
            comparison.add(Difference(where, Kind.TYPE, a.type, b.type))
            continue
        if a.mode != b.mode:
            comparison.add(Difference(where, Kind.MODE, oct(a.mode), oct(b.mode), cause=Cause.PERMISSIONS))
        if (a.uid, a.gid, a.uname, a.gname) != (b.uid, b.gid, b.uname, b.gname):
            comparison.add(Difference(where, Kind.OWNER, clip(f"{a.uid}:{a.gid} {a.uname}:{a.gname}"),
                                      clip(f"{b.uid}:{b.gid} {b.uname}:{b.gname}")))
        if a.mtime != b.mtime:
            comparison.add(Difference(where, Kind.MTIME, str(a.mtime if a.mtime != int(a.mtime) else int(a.mtime)),
                                      str(b.mtime if b.mtime != int(b.mtime) else int(b.mtime)), cause=Cause.TIMESTAMP))
        if a.linkname != b.linkname:
            comparison.add(Difference(where, Kind.SYMLINK, clip(a.linkname), clip(b.linkname), cause=text_cause(a.linkname, b.linkname)))
        if a.device != b.device:
            comparison.add(Difference(where, Kind.TYPE, f"{a.type} {a.device[0]},{a.device[1]}", f"{b.type} {b.device[0]},{b.device[1]}",
                                      "device numbers"))
        if a.pax != b.pax:
            lpax, rpax = dict(a.pax), dict(b.pax)
            for field in sorted(lpax.keys() | rpax.keys()):
                if lpax.get(field) != rpax.get(field):
                    comparison.add(Difference(f"{where} (pax header {clip(field, 80)})", Kind.CONTENT,
                                              clip(lpax.get(field)), clip(rpax.get(field)), "extended (pax) header: xattrs, times, ..."))
        if a.size != b.size or a.sha256 != b.sha256:
            if (a.size <= TEXT_LIMIT and b.size <= TEXT_LIMIT and open_left and open_right and len(details) < MAX_TEXT_DIFFS
                    and a.sha256 and b.sha256):
                details.append((a, b))
            else:
                comparison.add(
                    Difference(where, Kind.CONTENT, f"sha256:{a.sha256} ({a.size} bytes)", f"sha256:{b.sha256} ({b.size} bytes)")
                )
    if details:
        _describe_contents(details, label, comparison, open_left, open_right)  # type: ignore[arg-type]


def _read_batch(opener: Opener, wanted: set[str], source: str) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    with _malformed_is_archive_error(source), opener() as stream:
        for key, info, archive in _members(stream, source, None):
            if key in wanted and info.isreg():
                found[key] = archive.extractfile(info).read(TEXT_LIMIT)  # type: ignore[union-attr]
                if len(found) == len(wanted):
                    break
    return found


def _describe_contents(
    details: list[tuple[Member, Member]], label: str, comparison: Comparison, open_left: Opener, open_right: Opener
) -> None:
    """Text diffs of small differing entries, in bounded memory: both archives are streamed
    again side by side (one pass when the entries come in the same order, the common case);
    entries met out of order are then read in batches of at most BATCH_BYTES."""
    details.sort(key=lambda pair: pair[0].index)
    found: dict[str, Difference] = {}
    leftover = _describe_in_step(details, label, found, comparison, open_left, open_right)
    start = 0
    while start < len(leftover):
        end, size = start, 0
        while end < len(leftover) and (end == start or size + leftover[end][0].size + leftover[end][1].size <= BATCH_BYTES):
            size += leftover[end][0].size + leftover[end][1].size
            end += 1
        batch = leftover[start:end]
        wanted = {a.key for a, _ in batch}
        lbytes = _read_batch(open_left, wanted, comparison.left)
        rbytes = _read_batch(open_right, wanted, comparison.right)
        for a, _b in batch:
            found[a.key] = describe_bytes(label + a.key, lbytes.pop(a.key, b""), rbytes.pop(a.key, b""))
        del lbytes, rbytes
        start = end
    comparison.add(*(found[key] for key in sorted(found)))


def _describe_in_step(
    details: list[tuple[Member, Member]], label: str, found: dict[str, Difference], comparison: Comparison,
    open_left: Opener, open_right: Opener,
) -> list[tuple[Member, Member]]:
    """One pass over both archives; returns the pairs it could not take in order."""
    wanted = {a.key for a, _ in details}
    leftover: list[tuple[Member, Member]] = []
    passed: set[str] = set()  # wanted keys the right stream went past
    with _malformed_is_archive_error(f"{comparison.left} or {comparison.right}"), open_left() as lstream, open_right() as rstream:
        lentries = _members(lstream, comparison.left, None)
        rentries = _members(rstream, comparison.right, None)
        for position, (a, b) in enumerate(details):
            if a.key in passed:
                leftover.append((a, b))
                continue
            for key, info, archive in lentries:
                if key == a.key:
                    ldata = archive.extractfile(info).read(TEXT_LIMIT)  # type: ignore[union-attr]
                    break
            else:
                leftover.extend(details[position:])
                break
            for key, info, archive in rentries:
                if key == a.key:
                    rdata = archive.extractfile(info).read(TEXT_LIMIT)  # type: ignore[union-attr]
                    break
                if key in wanted:
                    passed.add(key)
            else:
                leftover.extend(pair for pair in details[position:] if pair not in leftover)
                break
            found[a.key] = describe_bytes(label + a.key, ldata, rdata)
            del ldata, rdata
        lentries.close()
        rentries.close()
    return leftover


def compare_tar_files(left: str, right: str, comparison: Comparison, label: str = "",
                      skip_content: frozenset[str] = frozenset()) -> None:
    """Compare two tar files, each plain, gzip- or zstd-compressed.

    ``skip_content``: entries whose content is compared elsewhere (an image's blobs); a
    difference in them still shows as a difference of the archive."""
    if files_equal(left, right):
        return
    start = len(comparison.differences)
    lkind, rkind = sniff(left), sniff(right)
    if lkind != rkind:
        comparison.add(Difference(label or ".", Kind.COMPRESSION, lkind, rkind, "different compression", Cause.COMPRESSION))
    elif lkind == "gzip":
        lhead, rhead = gzip_header(left), gzip_header(right)
        for field in ("mtime", "os", "xfl", "name", "method", "flags", "comment", "extra"):
            if lhead[field] != rhead[field]:
                cause = Cause.TIMESTAMP if field == "mtime" else Cause.COMPRESSION
                comparison.add(Difference(f"{label or '.'} (gzip header {field})", Kind.GZIP_HEADER,
                                          clip(lhead[field]), clip(rhead[field]), cause=cause))
    # two plain tars whose bytes differ have different payloads: no need to hash them
    plain = lkind == rkind == "tar"
    lbudget, rbudget = Budget(left), Budget(right)
    with open_decompressed(left, lbudget) as stream:
        lmembers, lpayload = read_members(stream, left, lbudget, skip_content, not plain)
    with open_decompressed(right, rbudget) as stream:
        rmembers, rpayload = read_members(stream, right, rbudget, skip_content, not plain)
    if not plain and lpayload == rpayload:
        if len(comparison.differences) == start:
            comparison.add(Difference(label or ".", Kind.COMPRESSION, f"sha256:{sha256_file(left)[0]}", f"sha256:{sha256_file(right)[0]}",
                                      "compressed bytes differ, the tar inside is identical", Cause.COMPRESSION))
        return
    before = len(comparison.differences)
    compare_members(lmembers, rmembers, label, comparison, lambda: open_decompressed(left), lambda: open_decompressed(right))
    if len(comparison.differences) == before:
        if plain:
            lpayload, rpayload = sha256_file(left)[0], sha256_file(right)[0]
        comparison.add(Difference(label or ".", Kind.CONTENT, f"sha256:{lpayload}", f"sha256:{rpayload}",
                                  "same entries, but the tar streams differ (headers, padding or bytes after the end of the archive)"))
