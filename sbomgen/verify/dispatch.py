"""``sbomgen diff A B``: tell what A and B are, and hand them to the right comparator."""

from __future__ import annotations

import os

from sbomgen.errors import InputNotFoundError
from sbomgen.oci.reader import is_image, open_image
from sbomgen.verify.compression import sniff
from sbomgen.verify.directory import compare_directories
from sbomgen.verify.files import compare_file_contents, files_equal, sha256_file
from sbomgen.verify.model import Comparison, Difference, Kind
from sbomgen.verify.oci import compare_images
from sbomgen.verify.tarball import compare_tar_files

_PREFIXES = ("oci:", "oci-archive:", "docker-archive:")


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
    if spec.startswith(_PREFIXES) or is_image(path):
        return "image"
    if os.path.isdir(path):
        return "directory"
    kind = sniff(path)
    if kind == "tar" or (kind in ("gzip", "zstd") and _is_compressed_tar(path)):
        return "tar"
    return "file"


def _is_compressed_tar(path: str) -> bool:
    """Whether a gzip/zstd file holds a tar; a compressed file that cannot even be read is an error."""
    from sbomgen.errors import ArchiveError
    from sbomgen.verify.compression import STREAM_ERRORS, open_decompressed

    try:
        with open_decompressed(path) as stream:
            head = stream.read(512)
    except STREAM_ERRORS as exc:
        raise ArchiveError(f"{path}: truncated or corrupt compressed file ({type(exc).__name__}: {exc})") from None
    return len(head) >= 262 and head[257:262] == b"ustar"


def compare_nested(left: str, right: str, label: str, comparison: Comparison) -> bool:
    """Recurse into two files that are both archives (diffoscope-style); False when they are not."""
    lkind, rkind = sniff(left), sniff(right)
    if lkind == "other" or rkind == "other":
        return False
    if files_equal(left, right):
        return True
    if classify(left) == classify(right) == "tar":
        compare_tar_files(left, right, comparison, label + "/")
        return True
    return False


def compare(left_spec: str, right_spec: str) -> Comparison:
    lkind, rkind = classify(left_spec), classify(right_spec)
    left, right = _path(left_spec), _path(right_spec)
    comparison = Comparison(left_spec, right_spec, lkind)
    if lkind == rkind and lkind != "directory" and os.path.isfile(left) and os.path.isfile(right) and files_equal(left, right):
        return comparison  # the same bytes: nothing inside can differ
    if lkind != rkind:
        comparison.kind = "mixed"
        comparison.add(Difference(".", Kind.TYPE, lkind, rkind))
        return comparison
    if lkind == "image":
        a = open_image(left_spec)
        try:
            b = open_image(right_spec)
            try:
                compare_images(a, b, comparison)
            finally:
                b.close()
        finally:
            a.close()
    elif lkind == "directory":
        compare_directories(os.path.realpath(left), os.path.realpath(right), comparison)
    elif lkind == "tar":
        compare_tar_files(left, right, comparison)
    else:
        hashes = sha256_file(left), sha256_file(right)
        comparison.facts["left_sha256"], comparison.facts["right_sha256"] = hashes[0][0], hashes[1][0]
        diff = compare_file_contents(os.path.basename(left), left, right, hashes)
        if diff:
            comparison.add(diff)
    return comparison
