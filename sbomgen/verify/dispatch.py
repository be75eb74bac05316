"""``sbomgen diff A B``: tell what A and B are, and hand them to the right comparator.

Two inputs are identical only when their bytes are (for directories: their entries, types,
permission bits, link targets and bytes).  Images are compared twice: as images (manifests,
configs, layers, which explains *what* differs) and as the container they come in (the
archive's members or the layout's files, which catches what the image view does not read:
an extra member, another compression, other member metadata).

Every failure on malformed input ends in a :class:`SbomgenError` (``diff`` exits 2).
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
import zlib

from sbomgen.errors import ArchiveError, ImageError, InputNotFoundError, LimitExceededError, SbomgenError, UsageError
from sbomgen.limits import Budget, current
from sbomgen.oci.reader import open_image
from sbomgen.verify.compression import TAR_ERRORS, open_decompressed, sniff
from sbomgen.verify.directory import compare_directories
from sbomgen.verify.files import compare_file_contents, files_equal, sha256_file
from sbomgen.verify.model import Comparison, Difference, Kind
from sbomgen.verify.oci import compare_images, covered_names
from sbomgen.verify.tarball import compare_tar_files

_PREFIXES = ("oci:", "oci-archive:", "docker-archive:")
_IMAGE_NAMES = ("manifest.json", "index.json", "oci-layout")
#: what a malformed image may raise from the parsers below the comparators
_MALFORMED = (KeyError, TypeError, AttributeError, ValueError, IndexError, RecursionError, EOFError, zlib.error, tarfile.TarError)


def _path(spec: str) -> str:
    for prefix in _PREFIXES:
        if spec.startswith(prefix):
            return spec[len(prefix):]
    return spec


def classify(spec: str) -> str:
    """``directory``, ``image``, ``tar`` or ``file``."""
    path = _path(spec)
    if not os.path.lexists(path):
        raise InputNotFoundError(f"no such file or directory: {path}")
    if os.path.islink(path) and not os.path.exists(path):
        raise InputNotFoundError(f"dangling symlink: {path} -> {os.readlink(path)}")
    mode = os.stat(path).st_mode
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise UsageError(f"{path} is not a regular file or directory (a FIFO, socket or device): diff reads files, directories and images")
    if spec.startswith(_PREFIXES):
        return "image"
    if stat.S_ISDIR(mode):
        return "image" if os.path.isfile(os.path.join(path, "oci-layout")) else "directory"
    kind = sniff(path)
    if kind == "tar" or (kind in ("gzip", "zstd") and _is_compressed_tar(path)):
        return "image" if kind != "zstd" and _has_image_members(path) else "tar"
    return "file"


def _is_compressed_tar(path: str) -> bool:
    """Whether a gzip/zstd file holds a tar; a compressed file that cannot even be read is an error."""
    try:
        with open_decompressed(path) as stream:
            head = b""
            while len(head) < 512 and (more := stream.read(512 - len(head))):
                head += more
    except TAR_ERRORS as exc:
        raise ArchiveError(f"{path}: truncated or corrupt compressed file ({type(exc).__name__}: {exc})") from None
    return len(head) >= 262 and head[257:262] == b"ustar"


def _has_image_members(path: str) -> bool:
    """Whether a tar (plain or gzip) names manifest.json, index.json or oci-layout; headers
    are read as a stream, bounded like any other read of the input."""
    budget = Budget(path)
    try:
        with open_decompressed(path, budget) as stream, tarfile.open(fileobj=stream, mode="r|") as archive:
            for info in archive:
                budget.add_member()
                if info.name.removeprefix("./") in _IMAGE_NAMES:
                    return True
    except TAR_ERRORS:
        return False  # compared as a tar, which reports what is wrong with it
    return False


def compare_nested(left: str, right: str, label: str, comparison: Comparison, depth: int = 1) -> bool:
    """Recurse into two files that are both archives (diffoscope-style); False when they are not."""
    lkind, rkind = sniff(left, follow=False), sniff(right, follow=False)
    if lkind == "other" or rkind == "other":
        return False
    if files_equal(left, right, follow=False):
        return True
    if depth > current().max_nesting:
        raise LimitExceededError(f"{left}: archives nested more than {current().max_nesting} deep")
    if classify(left) in ("tar", "image") and classify(right) in ("tar", "image"):
        compare_tar_files(left, right, comparison, label + "/")
        return True
    return False


def compare(left_spec: str, right_spec: str) -> Comparison:
    """Compare two inputs; malformed or unreadable input raises a :class:`SbomgenError`."""
    try:
        return _compare(left_spec, right_spec)
    except SbomgenError:
        raise
    except OSError as exc:
        where = exc.filename or left_spec
        if exc.errno == errno.ENOENT:
            raise InputNotFoundError(f"{where} disappeared while it was compared") from None
        raise ArchiveError(f"cannot read {where}: {exc.strerror or exc}") from None


def _compare(left_spec: str, right_spec: str) -> Comparison:
    lkind, rkind = classify(left_spec), classify(right_spec)
    left, right = _path(left_spec), _path(right_spec)
    comparison = Comparison(left_spec, right_spec, lkind)
    if lkind == rkind and os.path.isfile(left) and os.path.isfile(right) and files_equal(left, right):
        return comparison  # the same bytes: nothing inside can differ
    if lkind != rkind:
        comparison.kind = "mixed"
        comparison.add(Difference(".", Kind.TYPE, lkind, rkind))
        return comparison
    if lkind == "image":
        _compare_images(left_spec, right_spec, comparison)
    elif lkind == "directory":
        compare_directories(os.path.realpath(left), os.path.realpath(right), comparison)
    elif lkind == "tar":
        compare_tar_files(os.path.realpath(left), os.path.realpath(right), comparison)
    else:
        hashes = sha256_file(left), sha256_file(right)
        comparison.facts["left_sha256"], comparison.facts["right_sha256"] = hashes[0][0], hashes[1][0]
        diff = compare_file_contents(os.path.basename(left), os.path.realpath(left), os.path.realpath(right), hashes)
        if diff:
            comparison.add(diff)
        elif not files_equal(left, right):
            comparison.add(Difference(os.path.basename(left), Kind.CONTENT, hashes[0][0], hashes[1][0]))
    return comparison


def _open(spec: str):
    try:
        return open_image(spec)
    except SbomgenError:
        raise
    except OSError:
        raise
    except _MALFORMED as exc:
        raise ImageError(f"{_path(spec)}: malformed image ({type(exc).__name__}: {exc})") from None


def _compare_images(left_spec: str, right_spec: str, comparison: Comparison) -> None:
    """The image view, then the container view for what the image view did not cover."""
    a = _open(left_spec)
    try:
        b = _open(right_spec)
        try:
            try:
                compare_images(a, b, comparison)
            except (SbomgenError, OSError):
                raise
            except _MALFORMED as exc:
                raise ImageError(f"{a.source} vs {b.source}: malformed image ({type(exc).__name__}: {exc})") from None
            covered = covered_names(a) | covered_names(b)
            akind, bkind = a.kind, b.kind
        finally:
            b.close()
    finally:
        a.close()
    left, right = os.path.realpath(_path(left_spec)), os.path.realpath(_path(right_spec))
    raw = Comparison(left_spec, right_spec, comparison.kind)
    if os.path.isdir(left) and os.path.isdir(right):
        compare_directories(left, right, raw)
    elif os.path.isfile(left) and os.path.isfile(right):
        compare_tar_files(left, right, raw, skip_content=frozenset(covered))
    else:
        comparison.add(Difference(".", Kind.TYPE, akind, bkind,
                                  "the same image can be in another container; the image contents are compared above"))
    _merge_container(comparison, raw, covered)


def _merge_container(comparison: Comparison, raw: Comparison, covered: set[str]) -> None:
    """Add the container's differences that the image view does not already explain: the
    contents of blobs, manifests and index.json are compared as images, so their content,
    presence and NAR only count when nothing else differs (e.g. index.json re-indented)."""
    deferred = []
    for diff in raw.differences:
        name = diff.path.removeprefix("./")
        about_content = diff.kind in (Kind.CONTENT, Kind.MISSING, Kind.EXTRA, Kind.NAR_HASH)
        if about_content and (name in covered or name == "."):
            deferred.append(diff)
        else:
            comparison.add(diff)
    if comparison.identical:
        comparison.add(*deferred)
    for key, value in raw.facts.items():
        comparison.facts.setdefault(f"container_{key}", value)
