"""Reading images: OCI image layouts, oci-archives and docker-archives (as dockerTools writes them).

Every blob is checked against its digest as it is read: a manifest pointing at a missing blob,
or a blob whose bytes do not hash to its digest, raises :class:`ImageError`; nothing an image
says about itself is trusted.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO

from sbomgen.errors import ArchiveError, ImageError
from sbomgen.verify.compression import STREAM_ERRORS, sniff

MAX_JSON = 16 << 20
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")


class BlobStore:
    """Blobs by digest, wherever they live."""

    source: str

    def _open(self, name: str) -> BinaryIO:
        raise NotImplementedError

    def _exists(self, name: str) -> bool:
        raise NotImplementedError

    def open_file(self, name: str) -> BinaryIO:
        if not self._exists(name):
            raise ImageError(f"{self.source}: {name} is missing")
        return self._open(name)

    def read_json(self, name: str, digest: str | None = None) -> dict | list:
        with self.open_file(name) as handle:
            data = handle.read(MAX_JSON + 1)
        if len(data) > MAX_JSON:
            raise ImageError(f"{self.source}: {name} is larger than {MAX_JSON} bytes")
        if digest is not None:
            check_digest(data, digest, f"{self.source}: {name}")
        try:
            return json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ImageError(f"{self.source}: {name} is not JSON ({exc})") from None

    def close(self) -> None:
        pass


def check_digest(data: bytes, digest: str, what: str) -> None:
    algo, _, expected = digest.partition(":")
    if algo != "sha256":
        raise ImageError(f"{what}: unsupported digest algorithm {algo!r}")
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ImageError(f"{what}: digest mismatch: content is sha256:{actual}, expected {digest}")


def blob_name(digest: str) -> str:
    algo, _, hexdigest = digest.partition(":")
    if not algo or not hexdigest or "/" in hexdigest or ".." in hexdigest:
        raise ImageError(f"invalid digest {digest!r}")
    return f"blobs/{algo}/{hexdigest}"


class DirectoryStore(BlobStore):
    def __init__(self, root: str):
        self.root = root
        self.source = root

    def _exists(self, name: str) -> bool:
        return os.path.isfile(os.path.join(self.root, name))

    def _open(self, name: str) -> BinaryIO:
        return open(os.path.join(self.root, name), "rb")


class TarStore(BlobStore):
    """Members of a tar archive, by name (compressed archives are first unpacked to a temp file)."""

    def __init__(self, path: str):
        self.source = path
        self._tmp: str | None = None
        target = path
        kind = sniff(path)
        if kind == "gzip":
            fd, self._tmp = tempfile.mkstemp(prefix="sbomgen-", suffix=".tar")
            try:
                with os.fdopen(fd, "wb") as out, gzip.open(path, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
            except STREAM_ERRORS as exc:
                self.close()
                raise ArchiveError(f"{path}: truncated or corrupt gzip ({exc})") from None
            target = self._tmp
        try:
            self.tar = tarfile.open(target, "r:")
            members = self.tar.getmembers()
            self.members = {m.name.removeprefix("./"): m for m in members}
        except (tarfile.ReadError, *STREAM_ERRORS) as exc:
            self.close()
            raise ArchiveError(f"{path}: not a tar archive, or truncated ({exc})") from None
        if not _ends_properly(target, members):
            self.close()
            raise ArchiveError(f"{path}: truncated tar archive (it stops without its end-of-archive blocks)")

    def _exists(self, name: str) -> bool:
        member = self.members.get(name)
        return member is not None and (member.isreg() or member.issym() or member.islnk())

    def _open(self, name: str) -> BinaryIO:
        member = self.members[name]
        handle = self.tar.extractfile(member)
        if handle is None:
            raise ImageError(f"{self.source}: {name} is not a file")
        return handle

    def close(self) -> None:
        if getattr(self, "tar", None) is not None:
            self.tar.close()
        if self._tmp and os.path.exists(self._tmp):
            os.unlink(self._tmp)


def _ends_properly(path: str, members: list[tarfile.TarInfo]) -> bool:
    """A complete tar has a zero block after its last member's (padded) data; a cut one, cut on
    a member boundary, still reads as a shorter archive and must not pass for one."""
    end = 0
    if members:
        last = members[-1]
        end = last.offset_data + ((last.size + 511) // 512) * 512 if last.isreg() else last.offset_data
    size = os.path.getsize(path)
    if size < end + 512:
        return False
    with open(path, "rb") as handle:
        handle.seek(end)
        return handle.read(512) == bytes(512)


@dataclass(slots=True)
class Layer:
    digest: str  # of the blob as stored (compressed for OCI tar+gzip layers)
    media_type: str
    size: int | None
    name: str  # where the blob is in the store
    annotations: dict = field(default_factory=dict)


@dataclass(slots=True)
class ImageManifest:
    digest: str | None  # None for docker-archive entries (no manifest blob)
    manifest: dict
    config: dict
    config_digest: str
    layers: list[Layer]
    platform: dict = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Image:
    source: str
    kind: str  # "oci-layout" | "oci-archive" | "docker-archive"
    store: BlobStore
    index: dict | None
    manifests: list[ImageManifest]

    @contextmanager
    def open_layer(self, layer: Layer) -> Iterator[BinaryIO]:
        """The layer's tar, decompressed; its digest is verified once the stream is read to the end."""
        with self.store.open_file(layer.name) as raw:
            verifier = _VerifyingReader(raw, layer.digest, f"{self.source}: layer {layer.digest}")
            head = verifier.peek(2)
            stream: BinaryIO = gzip.GzipFile(fileobj=verifier, mode="rb") if head == b"\x1f\x8b" else verifier  # type: ignore[assignment]
            try:
                yield stream
                while stream.read(1 << 20):
                    pass
            except STREAM_ERRORS as exc:
                raise ArchiveError(f"{self.source}: layer {layer.digest} is truncated or corrupt ({exc})") from None
            verifier.finish()

    def close(self) -> None:
        self.store.close()


class _VerifyingReader:
    def __init__(self, raw: BinaryIO, digest: str, what: str):
        self.raw, self.digest, self.what = raw, digest, what
        self.hasher = hashlib.sha256()
        self.buffer = b""

    def peek(self, n: int) -> bytes:
        if len(self.buffer) < n:
            more = self.raw.read(n - len(self.buffer))
            self.hasher.update(more)
            self.buffer += more
        return self.buffer[:n]

    def read(self, n: int = -1) -> bytes:
        if self.buffer:
            data, self.buffer = (self.buffer, b"") if n < 0 or n >= len(self.buffer) else (self.buffer[:n], self.buffer[n:])
            return data
        data = self.raw.read(n)
        self.hasher.update(data)
        return data

    def finish(self) -> None:
        while self.read(1 << 20):
            pass
        algo, _, expected = self.digest.partition(":")
        if algo == "sha256" and self.hasher.hexdigest() != expected:
            raise ImageError(f"{self.what}: digest mismatch: content is sha256:{self.hasher.hexdigest()}")


def _oci_manifests(store: BlobStore, index: dict, source: str) -> list[ImageManifest]:
    result = []
    descriptors = list(index.get("manifests") or [])
    if not descriptors:
        raise ImageError(f"{source}: index.json lists no manifests")
    while descriptors:
        desc = descriptors.pop(0)
        digest = desc.get("digest", "")
        manifest = store.read_json(blob_name(digest), digest)
        if not isinstance(manifest, dict):
            raise ImageError(f"{source}: manifest {digest} is not an object")
        if desc.get("mediaType") in INDEX_TYPES or manifest.get("mediaType") in INDEX_TYPES:
            descriptors.extend(manifest.get("manifests") or [])
            continue
        try:
            config_desc = manifest["config"]
            layer_descs = manifest["layers"]
        except KeyError as exc:
            raise ImageError(f"{source}: manifest {digest} has no {exc.args[0]}") from None
        if config_desc.get("mediaType", "").startswith("application/vnd.oci.empty") or "layers" not in manifest:
            continue
        config = store.read_json(blob_name(config_desc["digest"]), config_desc["digest"])
        layers = [
            Layer(d["digest"], d.get("mediaType", ""), d.get("size"), blob_name(d["digest"]), d.get("annotations") or {})
            for d in layer_descs
        ]
        for layer in layers:
            if not store._exists(layer.name):
                raise ImageError(f"{source}: manifest {digest} points at a missing blob {layer.digest}")
        if manifest.get("subject") and manifest.get("artifactType"):
            continue  # a referrer artifact (SBOM, signature), not an image
        tags = [desc.get("annotations", {}).get("org.opencontainers.image.ref.name")] if desc.get("annotations") else []
        result.append(ImageManifest(digest, manifest, config, config_desc["digest"], layers, desc.get("platform") or {}, [t for t in tags if t]))
    return result


def _docker_manifests(store: BlobStore, source: str) -> list[ImageManifest]:
    entries = store.read_json("manifest.json")
    if not isinstance(entries, list) or not entries:
        raise ImageError(f"{source}: manifest.json is not a non-empty list")
    result = []
    for entry in entries:
        config_name = entry.get("Config")
        if not config_name:
            raise ImageError(f"{source}: manifest.json entry without Config")
        with store.open_file(config_name) as handle:
            data = handle.read(MAX_JSON + 1)
        config_digest = "sha256:" + hashlib.sha256(data).hexdigest()
        stem = os.path.basename(config_name).removesuffix(".json")
        if len(stem) == 64 and stem != config_digest[7:]:
            raise ImageError(f"{source}: {config_name}: digest mismatch: content is {config_digest}")
        config = json.loads(data)
        diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
        layers = []
        for position, name in enumerate(entry.get("Layers") or []):
            if not store._exists(name):
                raise ImageError(f"{source}: manifest.json points at a missing layer {name}")
            digest = ""
            parts = name.split("/")
            if parts[0] == "blobs" and len(parts) == 3:
                digest = f"{parts[1]}:{parts[2]}"
            elif len(parts[0]) == 64:
                digest = f"sha256:{parts[0]}"
            if not digest:  # e.g. a name of another scheme: the uncompressed diff id is all we know
                digest = diff_ids[position] if position < len(diff_ids) else ""
            layers.append(Layer(digest, "application/vnd.docker.image.rootfs.diff.tar", None, name))
        result.append(ImageManifest(None, entry, config, config_digest, layers, {}, list(entry.get("RepoTags") or [])))
    return result


def open_image(spec: str) -> Image:
    """``oci:DIR``, ``oci-archive:FILE``, ``docker-archive:FILE``, or a path that is one of them."""
    prefix, _, rest = spec.partition(":")
    explicit = prefix in ("oci", "oci-archive", "docker-archive") and rest
    path = rest if explicit else spec
    path = path.split(":", 1)[0] if explicit and prefix == "oci" and not os.path.exists(path) else path
    if not os.path.exists(path):
        raise ImageError(f"no such image: {path}")
    if os.path.isdir(path):
        if explicit and prefix != "oci":
            raise ImageError(f"{path} is a directory, not a {prefix}")
        store: BlobStore = DirectoryStore(path)
        kind = "oci-layout"
    else:
        store = TarStore(path)
        kind = "oci-archive" if store._exists("index.json") else "docker-archive"
        if explicit and prefix == "oci":
            store.close()
            raise ImageError(f"{path} is a file, not an OCI layout directory")
    try:
        if kind == "docker-archive" and not store._exists("manifest.json"):
            raise ImageError(f"{path} is not an image: no oci-layout/index.json and no manifest.json")
        if kind != "docker-archive":
            if not store._exists("oci-layout") or not store._exists("index.json"):
                raise ImageError(f"{path} is not an OCI image layout (no oci-layout or index.json)")
            layout = store.read_json("oci-layout")
            if not isinstance(layout, dict) or "imageLayoutVersion" not in layout:
                raise ImageError(f"{path}: oci-layout has no imageLayoutVersion")
            index = store.read_json("index.json")
            if not isinstance(index, dict):
                raise ImageError(f"{path}: index.json is not an object")
            return Image(path, kind, store, index, _oci_manifests(store, index, path))
        return Image(path, kind, store, None, _docker_manifests(store, path))
    except BaseException:
        store.close()
        raise


def is_image(path: str) -> bool:
    """Cheap sniff: an OCI layout directory, or a tar (plain or gzip) with index.json or manifest.json."""
    if os.path.isdir(path):
        return os.path.isfile(os.path.join(path, "oci-layout"))
    kind = sniff(path)
    if kind not in ("tar", "gzip"):
        return False
    wanted = ("manifest.json", "index.json", "oci-layout")
    try:
        if kind == "tar":  # random access: headers only, content is seeked over
            with tarfile.open(path, "r:") as archive:
                return any(m.name.removeprefix("./") in wanted for m in archive.getmembers())
        with gzip.open(path, "rb") as raw, tarfile.open(fileobj=raw, mode="r|") as archive:
            return any(m.name.removeprefix("./") in wanted for m in archive)
    except (tarfile.ReadError, *STREAM_ERRORS):
        return False
