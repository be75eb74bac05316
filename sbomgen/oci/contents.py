"""What an image contains: the store paths in its layers, and everything else.

Each layer is streamed once. Members below a Nix store directory (``nix/store/HASH-NAME/...``,
whatever the store directory is) are extracted into a scratch directory, safely (no absolute
names, no ``..``, no devices), so that each store path's NAR hash can be recomputed from the
image itself and its references found the way Nix finds them: by scanning the files for the
hash parts of the other store paths. Members outside any store path are listed as such.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
from dataclasses import dataclass, field

from sbomgen.errors import ArchiveError, ImageError
from sbomgen.nix.nar import nar_hash
from sbomgen.nix.storepath import is_store_name
from sbomgen.oci.reader import Image, ImageManifest
from sbomgen.verify.compression import STREAM_ERRORS

#: byte -> 1 for the 32 characters of Nix's base32 alphabet, 0 otherwise
_BASE32_MASK = bytes(1 if chr(b) in "0123456789abcdfghijklmnpqrsvwxyz" else 0 for b in range(256))
_RUN = b"\x01" * 32


@dataclass(slots=True)
class StorePathInImage:
    path: str  # e.g. /nix/store/HASH-NAME
    layers: list[str] = field(default_factory=list)  # digests of the layers that carry it
    nar_sha256: str = ""
    nar_size: int = 0
    references: tuple[str, ...] = ()


@dataclass(slots=True)
class ImageContents:
    image: Image
    manifest: ImageManifest
    store_dirs: set[str]
    store_paths: dict[str, StorePathInImage]
    outside: list[tuple[str, str, str]]  # (path, type, link target) not under any store path


def _split(name: str) -> tuple[str, str] | None:
    """(store dir, store path) for a member name below a store path, else None."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    for index, part in enumerate(parts):
        if index >= 1 and is_store_name(part):
            store_dir = "/" + "/".join(parts[:index])
            return store_dir, f"{store_dir}/{part}"
    return None


def _safe_target(root: str, name: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ImageError(f"layer member {name!r} escapes the image root")
    return os.path.join(root, *parts)


def _extract(archive: tarfile.TarFile, info: tarfile.TarInfo, target: str) -> None:
    if os.path.lexists(target) and not (info.isdir() and os.path.isdir(target)):
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        else:
            os.unlink(target)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if info.isdir():
        os.makedirs(target, exist_ok=True)
        os.chmod(target, 0o755)
    elif info.issym():
        os.symlink(info.linkname, target)
    elif info.isreg():
        with archive.extractfile(info) as source, open(target, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
        os.chmod(target, 0o755 if info.mode & stat.S_IXUSR else 0o644)
    # hard links, devices, fifos: not representable in a store path's NAR; skipped


def read_contents(image: Image, scratch: str) -> ImageContents:
    """Stream every layer of the image's first manifest and collect what it holds."""
    if not image.manifests:
        raise ImageError(f"{image.source}: no image manifest in it")
    manifest = image.manifests[0]
    found: dict[str, StorePathInImage] = {}
    outside: dict[str, tuple[str, str]] = {}
    store_dirs: set[str] = set()
    root = os.path.join(scratch, "root")
    hardlinks: list[tuple[tarfile.TarInfo, str]] = []
    for layer in manifest.layers:
        with image.open_layer(layer) as stream:
            try:
                with tarfile.open(fileobj=stream, mode="r|") as archive:
                    for info in archive:
                        name = info.name
                        where = _split(name)
                        if where is None:
                            clean = "/" + "/".join(p for p in name.split("/") if p not in ("", "."))
                            if info.isdir():
                                continue
                            kind = "symlink" if info.issym() else "file" if info.isreg() else "other"
                            outside[clean] = (kind, info.linkname)
                            continue
                        store_dir, store_path = where
                        store_dirs.add(store_dir)
                        entry = found.setdefault(store_path, StorePathInImage(store_path))
                        if layer.digest not in entry.layers:
                            entry.layers.append(layer.digest)
                        if info.islnk():
                            hardlinks.append((info, _safe_target(root, name)))
                            continue
                        _extract(archive, info, _safe_target(root, name))
            except tarfile.ReadError as exc:
                raise ArchiveError(f"{image.source}: layer {layer.digest} is not a tar, or truncated ({exc})") from None
            except STREAM_ERRORS as exc:
                raise ArchiveError(f"{image.source}: layer {layer.digest} is truncated or corrupt ({exc})") from None
    for info, target in hardlinks:
        source = _safe_target(root, info.linkname)
        if os.path.isfile(source):
            shutil.copy2(source, target)
    hashes = {os.path.basename(p)[:32].encode(): p for p in found}
    for store_path, entry in found.items():
        local = _safe_target(root, store_path)
        digest, size = nar_hash(local)
        entry.nar_sha256, entry.nar_size = digest.hex(), size
        entry.references = tuple(sorted(_scan_references(local, hashes) - {store_path}))
    return ImageContents(image, manifest, store_dirs, dict(sorted(found.items())), sorted((p, k, t) for p, (k, t) in outside.items()))


def _scan_references(root: str, hashes: dict[bytes, str]) -> set[str]:
    """Store paths whose hash part occurs in any file or symlink target below ``root`` (Nix's scan)."""
    refs: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                chunks = [os.readlink(full).encode()]
            elif os.path.isfile(full):
                chunks = _overlapping_chunks(full)
            else:
                continue
            for data in chunks:
                _find_hashes(data, hashes, refs)
    return refs


def _find_hashes(data: bytes, hashes: dict[bytes, str], refs: set[str]) -> None:
    """Every known 32-character hash part occurring in ``data``, at any offset.

    ``bytes.translate`` marks base32 characters at C speed; only the rare runs of 32 or more
    such characters are then looked at window by window (a regex scan is ten times slower).
    """
    mask = data.translate(_BASE32_MASK)
    pos = mask.find(_RUN)
    while pos != -1:
        end = pos + 32
        while end < len(mask) and mask[end]:
            end += 1
        for start in range(pos, end - 31):
            found = hashes.get(data[start : start + 32])
            if found is not None:
                refs.add(found)
        pos = mask.find(_RUN, end)


def _overlapping_chunks(path: str, size: int = 1 << 20):
    """The file in 1 MiB chunks, each starting with the last 31 bytes of the one before, so
    that a 32-character hash spanning a boundary is still seen whole."""
    tail = b""
    with open(path, "rb") as handle:
        while block := handle.read(size):
            yield tail + block
            tail = block[-31:]


def scratch_dir() -> str:
    return tempfile.mkdtemp(prefix="sbomgen-image-")
