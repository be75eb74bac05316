"""What an image contains: the store paths in its layers, and everything else.

Layers are **parsed, never unpacked**: each layer is read once as a tar stream, and every
member below a Nix store directory (``nix/store/HASH-NAME/...``, whatever the store directory
is) becomes a node of an in-memory tree per store path (:class:`~sbomgen.nix.nar.TreeNode`):
a directory, a regular file (its executable bit, its bytes), a symlink (its target, as text).
Nothing is created on the host at a name from the image, and no link is ever followed:

* a hardlink gets the content of the earlier member it names, which must be a regular file
  of the image's store paths, already read;
* a member below a symlink or file of the *same* layer (what an extractor would follow out
  of the tree) is an :class:`ImageError`; a member below a non-directory of an *earlier*
  layer replaces it with a directory (as an overlay would);
* devices, FIFOs and ``..`` in a store path are an :class:`ImageError` (not representable in
  a NAR, or escaping);
* a store path that is a symlink (to ``/usr``, say) is a symlink: its NAR is a symlink NAR.

Later layers override earlier ones, as the OCI layer spec says: a member replaces what was at
its name (a directory over a directory merges); a whiteout ``DIR/.wh.NAME`` removes ``NAME``
as earlier layers left it, with everything below it; an opaque whiteout ``DIR/.wh..wh..opq``
removes everything earlier layers put below ``DIR``. Whiteouts apply to store paths and to the
list of members outside them alike, and are not themselves listed.

File contents are needed in NAR order (names sorted), which need not be tar order, so they are
kept: small files in memory (64 MiB in all), the rest in one unnamed temporary file (gone when
closed, or if the process dies), runs of zeros as holes, so a gzip or sparse bomb of zeros
takes no disk. Each store path's NAR hash and size are then computed from the tree, and its
references found the way Nix finds them: by scanning its NAR for the hash parts of the other
store paths in the image. The whole input is bounded by :mod:`sbomgen.limits` (decompressed
bytes, content bytes, members). Nothing parsed from a layer is used unless the layer's digest
verified (:meth:`Image.open_layer` checks it at the end of the stream).
"""

from __future__ import annotations

import hashlib
import tarfile
import tempfile
from dataclasses import dataclass, field
from typing import BinaryIO

from sbomgen import limits
from sbomgen.errors import ArchiveError, ImageError, NarError, SbomgenError
from sbomgen.nix.nar import TreeNode, dump_tree
from sbomgen.nix.storepath import is_store_name
from sbomgen.oci.reader import BoundedTarInfo, Image, ImageManifest, show
from sbomgen.verify.compression import STREAM_ERRORS

#: byte -> 1 for the 32 characters of Nix's base32 alphabet, 0 otherwise
_BASE32_MASK = bytes(1 if chr(b) in "0123456789abcdfghijklmnpqrsvwxyz" else 0 for b in range(256))
_RUN = b"\x01" * 32
_CHUNK = 1 << 20
_ZEROS = bytes(_CHUNK)
_SMALL = 1 << 16
_MEMORY = 64 << 20
_ENCODING = ("utf-8", "surrogateescape")
_DIR, _FILE, _LINK = TreeNode.DIRECTORY, TreeNode.REGULAR, TreeNode.SYMLINK


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


def _split(parts: list[str]) -> tuple[str, str, int] | None:
    """(store dir, store path, index of the store path's name) for a member below a store path."""
    for index, part in enumerate(parts):
        if index >= 1 and is_store_name(part):
            store_dir = "/" + "/".join(parts[:index])
            return store_dir, f"{store_dir}/{part}", index
    return None


def _parts(name: str, what: str) -> list[str]:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ImageError(f"{what}: member {show(name)} has a '..' component: it would escape the image root")
    if any("\0" in p for p in parts):
        raise ImageError(f"{what}: member {show(name)} has a NUL byte in its name")
    return parts


class _Spool:
    """File contents kept for later, in memory or in one unnamed temporary file."""

    def __init__(self, directory: str | None):
        self.directory = directory
        self.file: BinaryIO | None = None
        self.end = 0
        self.in_memory = 0

    def keep(self, source: BinaryIO, size: int, node: TreeNode, what: str) -> None:
        if size < _SMALL and self.in_memory + size <= _MEMORY:
            data = source.read(size)
            if len(data) != size:
                raise ArchiveError(f"{what}: member is truncated")
            node.data = data
            self.in_memory += size
            return
        if self.file is None:
            self.file = tempfile.TemporaryFile(prefix="sbomgen-spool-", dir=self.directory)  # noqa: SIM115 - closed by close()
        handle = self.file
        node.offset = self.end
        handle.seek(self.end)
        remaining = size
        zeros = True
        while remaining:
            chunk = source.read(min(remaining, _CHUNK))
            if not chunk:
                raise ArchiveError(f"{what}: member is truncated")
            if chunk == _ZEROS[: len(chunk)]:
                handle.seek(len(chunk), 1)  # a hole: zeros take no disk
            else:
                handle.write(chunk)
                zeros = False
            remaining -= len(chunk)
        if zeros:  # nothing to read back either
            node.offset = -1
            return
        self.end += size
        handle.truncate(self.end)

    def chunks(self, node: TreeNode):
        if node.data is not None:
            yield node.data
            return
        if node.offset == -1:  # all zeros
            for start in range(0, node.size, _CHUNK):
                yield _ZEROS[: min(_CHUNK, node.size - start)]
            return
        handle = self.file
        assert handle is not None
        handle.seek(node.offset)
        remaining = node.size
        while remaining:
            chunk = handle.read(min(remaining, _CHUNK))
            if not chunk:
                raise NarError("spooled content is short")
            remaining -= len(chunk)
            yield chunk

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


class _Model:
    """The merged file system of an image's layers, as far as sbomgen needs it."""

    def __init__(self, image: Image, spool: _Spool):
        self.image = image
        self.spool = spool
        self.roots: dict[str, TreeNode] = {}
        self.found: dict[str, StorePathInImage] = {}
        self.store_dirs: set[str] = set()
        self.outside: dict[str, tuple[str, str, int]] = {}
        self.whiteouts: dict[str, int] = {}  # outside path (prefix) -> last layer that whited it out
        self.budget = image.budget or limits.Budget(image.source)
        self.content = limits.Budget(f"{image.source}: store path contents")

    # -- one member -----------------------------------------------------------------------

    def add(self, archive: tarfile.TarFile, info: tarfile.TarInfo, layer: int, digest: str) -> None:
        what = f"{self.image.source}: layer {digest}"
        self.budget.add_member()
        parts = _parts(info.name, what)
        if not parts:
            return
        if parts[-1].startswith(".wh."):
            self._whiteout(parts, layer)
            return
        where = _split(parts)
        if where is None:
            if not info.isdir():
                kind = "symlink" if info.issym() else "file" if info.isreg() else "hardlink" if info.islnk() else "other"
                self.outside["/" + "/".join(parts)] = (kind, info.linkname if info.issym() or info.islnk() else "", layer)
            return
        store_dir, store_path, at = where
        self.store_dirs.add(store_dir)
        entry = self.found.setdefault(store_path, StorePathInImage(store_path))
        if digest not in entry.layers:
            entry.layers.append(digest)
        node = self._node(archive, info, layer, what)
        rel = [p.encode(*_ENCODING) for p in parts[at + 1 :]]
        if not rel:
            old = self.roots.get(store_path)
            self.roots[store_path] = self._merge(old, node)
            return
        slot, key = self.roots, store_path  # type: ignore[var-annotated]
        current = self.roots.get(store_path)
        for name in rel:
            if current is None or current.kind != _DIR:
                if current is not None and current.layer == layer:
                    raise ImageError(f"{what}: member {show(info.name)} is below a {'symlink' if current.kind == _LINK else 'file'}"
                                     " of the same layer: refusing to follow it")
                current = TreeNode(_DIR, layer)
                self.budget.add_member()
                slot[key] = current  # type: ignore[index]
            slot, key = current.children, name  # type: ignore[assignment]
            current = slot.get(key)  # type: ignore[call-overload]
        slot[key] = self._merge(current, node)  # type: ignore[index]

    @staticmethod
    def _merge(old: TreeNode | None, new: TreeNode) -> TreeNode:
        if old is not None and old.kind == _DIR and new.kind == _DIR:
            old.layer = new.layer
            return old
        return new

    def _node(self, archive: tarfile.TarFile, info: tarfile.TarInfo, layer: int, what: str) -> TreeNode:
        if info.isdir():
            return TreeNode(_DIR, layer)
        if info.issym():
            return TreeNode(_LINK, layer, target=info.linkname.encode(*_ENCODING))
        if info.islnk():
            return self._hardlink(info, layer, what)
        if info.isreg():
            node = TreeNode(_FILE, layer, executable=bool(info.mode & 0o100), size=info.size)
            self.content.add_bytes(info.size)
            source = archive.extractfile(info)
            assert source is not None
            self.spool.keep(source, info.size, node, f"{what}: {show(info.name)}")  # type: ignore[arg-type]
            return node
        kind = "character device" if info.ischr() else "block device" if info.isblk() else "FIFO" if info.isfifo() else "special file"
        raise ImageError(f"{what}: member {show(info.name)} is a {kind}: not representable in a store path (NAR)")

    def _hardlink(self, info: tarfile.TarInfo, layer: int, what: str) -> TreeNode:
        parts = _parts(info.linkname, f"{what}: hardlink {show(info.name)} -> target")
        where = _split(parts)
        target = None
        if where is not None:
            target = self.roots.get(where[1])
            for name in parts[where[2] + 1 :]:
                if target is None or target.kind != _DIR:
                    target = None
                    break
                target = target.children.get(name.encode(*_ENCODING))  # type: ignore[union-attr]
        if target is None or target.kind != _FILE:
            raise ImageError(f"{what}: hardlink {show(info.name)} -> {show(info.linkname)} does not name an earlier regular file"
                             " of the image's store paths")
        return TreeNode(_FILE, layer, executable=target.executable, size=target.size, data=target.data, offset=target.offset)

    # -- whiteouts ------------------------------------------------------------------------

    def _whiteout(self, parts: list[str], layer: int) -> None:
        opaque = parts[-1] == ".wh..wh..opq"
        target = parts[:-1] if opaque else [*parts[:-1], parts[-1][4:]]
        if not target or (not opaque and not target[-1]):
            return
        where = _split(target)
        if where is not None:
            store_path, at = where[1], where[2]
            rel = [p.encode(*_ENCODING) for p in target[at + 1 :]]
            parent: dict | None = self.roots
            key: object = store_path
            for name in rel:
                node = parent.get(key)  # type: ignore[union-attr]
                if node is None or node.kind != _DIR:
                    return
                parent, key = node.children, name
            node = parent.get(key)  # type: ignore[union-attr]
            if node is None:
                return
            if opaque:
                if node.kind == _DIR:
                    _prune(node, layer, keep_self=True)
            elif node.layer < layer or _prune(node, layer, keep_self=False):
                del parent[key]  # type: ignore[index]
            if not rel and store_path not in self.roots:
                self.found.pop(store_path, None)
            return
        prefix = "/" + "/".join(target)
        self.whiteouts[prefix] = layer
        for store_path in [p for p in self.roots if p.startswith(prefix + "/")]:
            node = self.roots[store_path]
            if node.layer < layer or (node.kind == _DIR and _prune(node, layer, keep_self=False)):
                del self.roots[store_path]
                self.found.pop(store_path, None)
        if not opaque:
            old = self.outside.get(prefix)
            if old is not None and old[2] < layer:
                del self.outside[prefix]

    def outside_list(self) -> list[tuple[str, str, str]]:
        result = []
        for path, (kind, target, layer) in self.outside.items():
            ancestor = path.rsplit("/", 1)[0]
            hidden = False
            while ancestor:
                if self.whiteouts.get(ancestor, -1) > layer:
                    hidden = True
                    break
                ancestor = ancestor.rsplit("/", 1)[0]
            if not hidden:
                result.append((path, kind, target))
        return sorted(result)

    # -- results --------------------------------------------------------------------------

    def finish(self) -> dict[str, StorePathInImage]:
        for store_path in [p for p in self.found if p not in self.roots]:
            del self.found[store_path]
        hashes = {store_path.rsplit("/", 1)[1][:32].encode(): store_path for store_path in self.found}
        grams = _grams(hashes)
        for store_path, entry in self.found.items():
            scan = _NarScan(hashes, grams)
            try:
                dump_tree(self.roots[store_path], scan.write, self.spool.chunks)
            except NarError as exc:
                raise ImageError(f"{self.image.source}: {show(store_path)}: {exc}") from None
            entry.nar_sha256, entry.nar_size = scan.hasher.hexdigest(), scan.size
            entry.references = tuple(sorted(scan.refs - {store_path}))
        return dict(sorted(self.found.items()))


class _NarScan:
    """Hashes a NAR as it is written and finds the store path hash parts in it (Nix's scan
    covers the whole NAR: contents, symlink targets and names), across piece boundaries."""

    __slots__ = ("grams", "hasher", "hashes", "refs", "size", "tail")

    def __init__(self, hashes: dict[bytes, str], grams: dict) -> None:
        self.hashes = hashes
        self.grams = grams
        self.hasher = hashlib.sha256()
        self.refs: set[str] = set()
        self.size = 0
        self.tail = b""

    def write(self, data: bytes) -> None:
        self.hasher.update(data)
        self.size += len(data)
        _find_hashes(self.tail + data, self.hashes, self.refs, self.grams)
        self.tail = data[-31:]


def _prune(root: TreeNode, layer: int, *, keep_self: bool) -> bool:
    """Remove what earlier layers put below ``root`` (a directory); True when ``root`` itself
    came from an earlier layer and nothing of ``layer`` is left in it (it should go)."""
    if root.kind != _DIR:
        return root.layer < layer
    stack = [root]
    while stack:
        node = stack.pop()
        for name, child in list(node.children.items()):  # type: ignore[union-attr]
            if child.layer < layer:
                del node.children[name]  # type: ignore[union-attr]
            elif child.kind == _DIR:
                stack.append(child)
    return not keep_self and root.layer < layer and not root.children


def read_contents(image: Image, scratch: str | None = None) -> ImageContents:
    """Stream every layer of the image's first manifest and collect what it holds.

    ``scratch`` (optional) is where the unnamed spool file goes; nothing is ever written at a
    name taken from the image."""
    if not image.manifests:
        raise ImageError(f"{image.source}: no image manifest in it")
    manifest = image.manifests[0]
    spool = _Spool(scratch)
    try:
        model = _Model(image, spool)
        for number, layer in enumerate(manifest.layers):
            model.budget.add_member()  # a layer costs something even when empty
            with image.open_layer(layer) as stream:
                try:
                    with tarfile.open(fileobj=stream, mode="r|", encoding=_ENCODING[0], errors=_ENCODING[1],
                                      tarinfo=BoundedTarInfo) as archive:
                        for info in archive:
                            model.add(archive, info, number, layer.digest)
                            archive.members.clear()  # a stream needs no index: memory stays flat
                except tarfile.ReadError as exc:
                    raise ArchiveError(f"{image.source}: layer {layer.digest} is not a tar, or truncated ({show(str(exc), 120)})") from None
                except (tarfile.TarError, *STREAM_ERRORS) as exc:
                    raise ArchiveError(f"{image.source}: layer {layer.digest} is truncated or corrupt ({show(str(exc), 120)})") from None
                except (SbomgenError, RecursionError, MemoryError):
                    raise
                except (ValueError, UnicodeError) as exc:
                    raise ArchiveError(f"{image.source}: layer {layer.digest} is malformed ({show(str(exc), 120)})") from None
        store_paths = model.finish()
        return ImageContents(image, manifest, model.store_dirs, store_paths, model.outside_list())
    finally:
        spool.close()


def _grams(hashes: dict[bytes, str]) -> dict[bytes, list[tuple[bytes, int]]]:
    """Each 16-character piece ``h[i:i+16]`` (i < 16) of each hash part, for :func:`_find_hashes`."""
    grams: dict[bytes, list[tuple[bytes, int]]] = {}
    for part in hashes:
        for offset in range(16):
            grams.setdefault(part[offset : offset + 16], []).append((part, offset))
    return grams


def _find_hashes(data: bytes, hashes: dict[bytes, str], refs: set[str], grams: dict | None = None) -> None:
    """Every known 32-character hash part occurring in ``data``, at any offset.

    ``bytes.translate`` marks base32 characters at C speed; only the rare runs of 32 or more
    such characters are then looked at. A short run is checked window by window; in a long one
    (a crafted file of a gigabyte of base32 letters) only every 16th position is looked up, in
    ``grams``: any 32-character occurrence contains one such 16-character piece, and a hit is
    then checked whole. That keeps the scan at about 16 times fewer Python steps than bytes.
    """
    mask = data.translate(_BASE32_MASK)
    pos = mask.find(_RUN)
    while pos != -1:
        end = mask.find(b"\x00", pos + 32)
        if end == -1:
            end = len(mask)
        if grams is None or end - pos < 256:
            for start in range(pos, end - 31):
                found = hashes.get(data[start : start + 32])
                if found is not None:
                    refs.add(found)
        else:
            get = grams.get
            for block in range(pos, end - 15, 16):
                hits = get(data[block : block + 16])
                if hits:
                    for part, offset in hits:
                        start = block - offset
                        if start >= pos and start + 32 <= end and data[start : start + 32] == part:
                            refs.add(hashes[part])
        pos = mask.find(_RUN, end)


def scratch_dir() -> str:
    return tempfile.mkdtemp(prefix="sbomgen-image-")
