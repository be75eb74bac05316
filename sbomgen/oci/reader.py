"""Reading images: OCI image layouts, oci-archives and docker-archives (``docker save``, old and
new, and dockerTools).

Nothing an image says about itself is trusted:

* a descriptor digest must match the OCI grammar (``sha256:`` + 64 or ``sha512:`` + 128
  lowercase hex digits); anything else is an :class:`ImageError` naming it, so a digest never
  becomes a path outside the layout;
* blobs are opened below the layout without following any symlink (``O_NOFOLLOW`` on every
  component) and must be regular files; in an archive, a member that is a link is resolved
  inside the archive only, a few hops at most;
* every blob is verified before its content is used: JSON blobs (index, manifest, config) are
  hashed, and their declared size checked, before they are parsed; a layer is verified when its
  stream has been read to the end (:meth:`Image.open_layer`), and what was parsed from it is
  used only once that succeeded; docker-archive layers not named by their digest are verified
  against the config's ``rootfs.diff_ids``, by position;
* what one image may cost is bounded by :mod:`sbomgen.limits`: decompressed bytes, members,
  manifests reachable from the index (every listed descriptor counts, a digest is read once),
  index nesting, JSON size and depth; exceeding one is a :class:`LimitExceededError`.

Malformed JSON of any shape ends in :class:`ImageError`, never in a ``KeyError``.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import posixpath
import re
import stat
import tarfile
import tempfile
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO

from sbomgen import limits
from sbomgen.errors import ArchiveError, ImageError, LimitExceededError, SbomgenError
from sbomgen.text import quoted
from sbomgen.verify.compression import STREAM_ERRORS, sniff

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}")
_HEX64 = re.compile(r"[a-f0-9]{64}")
_MAX_LINK_HOPS = 8
_CHUNK = 1 << 20
_ZEROS = bytes(_CHUNK)


def parse_digest(digest: object, what: str) -> tuple[str, str]:
    """``(algorithm, hex)`` of a digest in the OCI grammar sbomgen can verify; :class:`ImageError`
    naming the digest for anything else (unknown algorithm, uppercase, a path)."""
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        algo = digest.partition(":")[0] if isinstance(digest, str) else ""
        if isinstance(digest, str) and re.fullmatch(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*", algo) and algo not in ("sha256", "sha512"):
            raise ImageError(f"{what}: unsupported digest algorithm in {quoted(digest)} (sha256 and sha512 are verified)")
        raise ImageError(f"{what}: invalid digest {quoted(digest)} (want sha256:<64 hex digits> or sha512:<128 hex digits>)")
    algo, _, hexdigest = digest.partition(":")
    return algo, hexdigest


def check_digest(data: bytes, digest: str, what: str) -> None:
    algo, expected = parse_digest(digest, what)
    actual = hashlib.new(algo, data).hexdigest()
    if actual != expected:
        raise ImageError(f"{what}: digest mismatch: content is {algo}:{actual}, expected {digest}")


def blob_name(digest: object, what: str = "image") -> str:
    """``blobs/ALGO/HEX`` for a digest in the OCI grammar (never anything with a ``/`` or ``..`` of its own)."""
    algo, hexdigest = parse_digest(digest, what)
    return f"blobs/{algo}/{hexdigest}"


class BoundedTarInfo(tarfile.TarInfo):
    """A TarInfo whose extended headers (PAX records, GNU long names) are at most
    ``max_json_bytes``: tarfile reads them whole into memory, so a header claiming gigabytes
    would otherwise cost gigabytes of RAM. Pass ``tarinfo=BoundedTarInfo`` to ``tarfile.open``."""

    def _proc_member(self, tarfile_):  # type: ignore[no-untyped-def]
        if self.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
                         tarfile.GNUTYPE_LONGLINK):
            bound = limits.current().max_json_bytes
            if self.size > bound:
                raise LimitExceededError(f"{quoted(tarfile_.name or 'archive')}: an extended tar header of {self.size} bytes"
                                         f" (more than {bound})")
        return super()._proc_member(tarfile_)


def _json_depth_ok(value: object, max_depth: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > max_depth:
                return False
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return True


def parse_json(data: bytes, what: str) -> object:
    """JSON from an untrusted blob, bounded in depth (:class:`LimitExceededError`)."""
    bound = limits.current()
    try:
        value = json.loads(data)
    except RecursionError:
        raise LimitExceededError(f"{what}: JSON nested deeper than {bound.max_json_depth} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ImageError(f"{what} is not JSON ({quoted(str(exc), 120)})") from None
    if not _json_depth_ok(value, bound.max_json_depth):
        raise LimitExceededError(f"{what}: JSON nested deeper than {bound.max_json_depth} levels")
    return value


class BlobStore:
    """Blobs by name (``blobs/sha256/HEX``, ``manifest.json``, ...), wherever they live."""

    source: str

    def _open(self, name: str) -> BinaryIO | None:
        """The named regular file, or None when there is none; :class:`ImageError` when the
        name is a link that leaves the store, a directory, a device..."""
        raise NotImplementedError

    def _exists(self, name: str) -> bool:
        handle = self._open(name)
        if handle is None:
            return False
        handle.close()
        return True

    def open_file(self, name: str) -> BinaryIO:
        handle = self._open(name)
        if handle is None:
            raise ImageError(f"{self.source}: {quoted(name)} is missing")
        return handle

    def read_bytes(self, name: str, digest: str | None = None, size: int | None = None) -> bytes:
        """A whole (JSON) blob, at most ``max_json_bytes``, verified against ``digest`` and ``size``."""
        bound = limits.current().max_json_bytes
        with self.open_file(name) as handle:
            data = handle.read(bound + 1)
        if len(data) > bound:
            raise LimitExceededError(f"{self.source}: {quoted(name)} is larger than {bound} bytes")
        if digest is not None:
            check_digest(data, digest, f"{self.source}: {name}")
        if size is not None and size != len(data):
            raise ImageError(f"{self.source}: {quoted(name)} is {len(data)} bytes, its descriptor says {size}")
        return data

    def read_json(self, name: str, digest: str | None = None, size: int | None = None) -> object:
        return parse_json(self.read_bytes(name, digest, size), f"{self.source}: {quoted(name)}")

    def close(self) -> None:
        pass


_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_O_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _clean_name(name: str, source: str) -> list[str]:
    parts = name.split("/")
    if any(p in ("", ".", "..") or "\0" in p for p in parts):
        raise ImageError(f"{source}: invalid blob name {quoted(name)}")
    return parts


class DirectoryStore(BlobStore):
    """An OCI layout directory. Every component below the root is opened with ``O_NOFOLLOW``:
    a blob (or ``blobs/sha256``) that is a symlink is an error, never followed."""

    def __init__(self, root: str):
        self.root = root
        self.source = root

    def _open(self, name: str) -> BinaryIO | None:
        parts = _clean_name(name, self.source)
        try:
            dirfd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise ImageError(f"{self.source}: cannot open the layout ({exc.strerror})") from None
        try:
            for part in parts[:-1]:
                fd = os.open(part, _O_DIR, dir_fd=dirfd)
                os.close(dirfd)
                dirfd = fd
            fd = os.open(parts[-1], _O_FILE, dir_fd=dirfd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise ImageError(f"{self.source}: {quoted(name)} is (below) a symlink or not a directory: refusing to follow it") from None
            raise ImageError(f"{self.source}: cannot open {quoted(name)} ({exc.strerror})") from None
        finally:
            os.close(dirfd)
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            raise ImageError(f"{self.source}: {quoted(name)} is not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")


class TarStore(BlobStore):
    """Members of a tar archive, by name. A gzip'd archive is decompressed into an unnamed
    temporary file (gone when closed, or when the process dies), at most ``max_bytes``, runs
    of zeros as holes."""

    def __init__(self, path: str):
        self.source = path
        self._tmp: BinaryIO | None = None
        self.tar: tarfile.TarFile | None = None
        bound = limits.current()
        try:
            kind = sniff(path)
            if kind == "gzip":
                self._tmp = tempfile.TemporaryFile(prefix="sbomgen-archive-")  # noqa: SIM115 - closed by close()
                written = 0
                try:
                    with gzip.open(path, "rb") as src:
                        while chunk := src.read(_CHUNK):
                            written += len(chunk)
                            if written > bound.max_bytes:
                                raise LimitExceededError(
                                    f"{path}: more than {bound.max_bytes} bytes once decompressed (raise the limit with --max-bytes)")
                            if chunk == _ZEROS[: len(chunk)]:
                                self._tmp.seek(len(chunk), 1)  # a hole: a bomb of zeros takes no disk
                            else:
                                self._tmp.write(chunk)
                    self._tmp.truncate(written)
                except STREAM_ERRORS as exc:
                    raise ArchiveError(f"{path}: truncated or corrupt gzip ({exc})") from None
                self._tmp.seek(0)
                self.tar = tarfile.open(fileobj=self._tmp, mode="r:", encoding="utf-8", errors="surrogateescape",  # noqa: SIM115
                                        tarinfo=BoundedTarInfo)
            else:
                self.tar = tarfile.open(path, "r:", encoding="utf-8", errors="surrogateescape", tarinfo=BoundedTarInfo)  # noqa: SIM115
            members = []
            for member in self.tar:
                members.append(member)
                if len(members) > bound.max_members:
                    raise LimitExceededError(f"{path}: more than {bound.max_members} members (raise the limit with --max-members)")
            self.members = {m.name.removeprefix("./").rstrip("/"): m for m in members}
            if not self._ends_properly(members):
                raise ArchiveError(f"{path}: truncated tar archive (it stops without its end-of-archive blocks)")
        except (tarfile.TarError, *STREAM_ERRORS) as exc:
            self.close()
            raise ArchiveError(f"{path}: not a tar archive, or truncated ({quoted(str(exc), 120)})") from None
        except BaseException:
            self.close()
            raise

    def _ends_properly(self, members: list[tarfile.TarInfo]) -> bool:
        """A complete tar has a zero block after its last member's (padded) data; a cut one, cut on
        a member boundary, still reads as a shorter archive and must not pass for one."""
        end = 0
        if members:
            last = members[-1]
            end = last.offset_data + ((last.size + 511) // 512) * 512 if last.isreg() else last.offset_data
        handle = self.tar.fileobj  # type: ignore[union-attr]
        handle.seek(0, os.SEEK_END)
        if handle.tell() < end + 512:
            return False
        handle.seek(end)
        return handle.read(512) == bytes(512)

    def _member(self, name: str) -> tarfile.TarInfo | None:
        """The regular member ``name`` names, following symlinks and hardlinks inside the archive only."""
        member = self.members.get(name.removeprefix("./"))
        for _ in range(_MAX_LINK_HOPS):
            if member is None or member.isreg():
                return member
            if member.issym():
                target = posixpath.normpath(posixpath.join(posixpath.dirname(member.name), member.linkname))
            elif member.islnk():
                target = posixpath.normpath(member.linkname)
            else:
                raise ImageError(f"{self.source}: {quoted(name)} is not a regular file")
            if target.startswith(("/", "../")) or target == "..":
                raise ImageError(f"{self.source}: {quoted(name)} links outside the archive ({quoted(member.linkname)})")
            member = self.members.get(target.removeprefix("./"))
        raise ImageError(f"{self.source}: {quoted(name)}: too many links (more than {_MAX_LINK_HOPS}), or a loop")

    def _open(self, name: str) -> BinaryIO | None:
        member = self._member(name)
        if member is None:
            return None
        handle = self.tar.extractfile(member)  # type: ignore[union-attr]
        if handle is None:
            raise ImageError(f"{self.source}: {quoted(name)} is not a file")
        return handle  # type: ignore[return-value]

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()
            self.tar = None
        if self._tmp is not None:
            self._tmp.close()
            self._tmp = None


@dataclass(slots=True)
class Layer:
    digest: str  # of the blob as stored (compressed for OCI tar+gzip layers); the diff id when
    #              ``verify_uncompressed`` (docker-archive layers not named by their digest)
    media_type: str
    size: int | None
    name: str  # where the blob is in the store
    annotations: dict = field(default_factory=dict)
    verify_uncompressed: bool = False


@dataclass(slots=True)
class ImageManifest:
    digest: str | None  # None for docker-archive entries (no manifest blob)
    manifest: dict
    config: dict
    config_digest: str
    layers: list[Layer]
    platform: dict = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)


class _Counter:
    """Counts the decompressed bytes of layers against the image's budget, and hashes them
    when a diff id is to be checked."""

    def __init__(self, raw: BinaryIO, budget: limits.Budget, algo: str | None):
        self.raw, self.budget = raw, budget
        self.hasher = hashlib.new(algo) if algo else None

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:  # everything: still counted chunk by chunk
            return b"".join(iter(lambda: self.read(_CHUNK), b""))
        data = self.raw.read(n)
        if data:
            self.budget.add_bytes(len(data))
            if self.hasher is not None:
                self.hasher.update(data)
        return data

    def readable(self) -> bool:
        return True


@dataclass(slots=True)
class Image:
    source: str
    kind: str  # "oci-layout" | "oci-archive" | "docker-archive"
    store: BlobStore
    index: dict | None
    manifests: list[ImageManifest]
    budget: limits.Budget | None = None

    @contextmanager
    def open_layer(self, layer: Layer) -> Iterator[BinaryIO]:
        """The layer's tar, decompressed, counted against ``max_bytes``. Its digest (and size)
        is verified once the stream is read to the end; on any error while it is read, a
        digest mismatch is reported in preference (it is the cause)."""
        if self.budget is None:
            self.budget = limits.Budget(self.source)
        what = f"{self.source}: layer {layer.digest}"
        with self.store.open_file(layer.name) as raw:
            verifier = _VerifyingReader(raw, None if layer.verify_uncompressed else layer.digest, layer.size, what)
            head = verifier.peek(2)
            inner: BinaryIO = gzip.GzipFile(fileobj=verifier, mode="rb") if head == b"\x1f\x8b" else verifier  # type: ignore[assignment]
            algo = parse_digest(layer.digest, what)[0] if layer.verify_uncompressed else None
            counted = _Counter(inner, self.budget, algo)
            try:
                yield counted  # type: ignore[misc]
                while counted.read(_CHUNK):
                    pass
            except (SbomgenError, tarfile.TarError, *STREAM_ERRORS) as exc:
                verifier.finish()  # a mismatch is the better explanation
                if isinstance(exc, SbomgenError):
                    raise
                raise ArchiveError(f"{what} is truncated or corrupt ({quoted(str(exc), 120)})") from None
            verifier.finish()
            if counted.hasher is not None:
                actual = f"{algo}:{counted.hasher.hexdigest()}"
                if actual != layer.digest:
                    raise ImageError(f"{what}: digest mismatch: uncompressed content is {actual} (the config's diff_id)")

    def close(self) -> None:
        self.store.close()


class _VerifyingReader:
    """Hashes (and counts) the raw blob as it is read; :meth:`finish` checks digest and size."""

    def __init__(self, raw: BinaryIO, digest: str | None, size: int | None, what: str):
        self.raw, self.digest, self.expected_size, self.what = raw, digest, size, what
        self.algo = parse_digest(digest, what)[0] if digest else "sha256"
        self.hasher = hashlib.new(self.algo)
        self.buffer = b""
        self.size = 0
        self.finished = False

    def _pull(self, n: int) -> bytes:
        data = self.raw.read(n)
        self.hasher.update(data)
        self.size += len(data)
        return data

    def peek(self, n: int) -> bytes:
        if len(self.buffer) < n:
            self.buffer += self._pull(n - len(self.buffer))
        return self.buffer[:n]

    def read(self, n: int = -1) -> bytes:
        if self.buffer:
            data, self.buffer = (self.buffer, b"") if n is None or n < 0 or n >= len(self.buffer) else (self.buffer[:n], self.buffer[n:])
            return data
        return self._pull(n if n is not None and n >= 0 else _CHUNK)

    def readable(self) -> bool:
        return True

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.buffer = b""
        while self._pull(_CHUNK):
            pass
        if self.digest:
            actual = f"{self.algo}:{self.hasher.hexdigest()}"
            if actual != self.digest:
                raise ImageError(f"{self.what}: digest mismatch: content is {actual}")
        if self.expected_size is not None and self.size != self.expected_size:
            raise ImageError(f"{self.what}: blob is {self.size} bytes, its descriptor says {self.expected_size}")


def _object(value: object, what: str) -> dict:
    if not isinstance(value, dict):
        raise ImageError(f"{what} is not a JSON object")
    return value


def _list(value: object, what: str) -> list:
    if not isinstance(value, list):
        raise ImageError(f"{what} is not a JSON array")
    return value


def _string(value: object, what: str, default: str = "") -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        raise ImageError(f"{what} is not a string")
    return value


@dataclass(slots=True)
class _Descriptor:
    digest: str
    media_type: str
    size: int | None
    annotations: dict
    platform: dict


def _descriptor(value: object, what: str, *, size_required: bool = False) -> _Descriptor:
    desc = _object(value, what)
    digest = desc.get("digest")
    if digest is None:
        raise ImageError(f"{what} has no digest")
    parse_digest(digest, what)
    size = desc.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise ImageError(f"{what} ({digest}): size {quoted(size)} is not a non-negative integer")
    if size is None and size_required:
        raise ImageError(f"{what} ({digest}) has no size")
    annotations = desc.get("annotations") or {}
    platform = desc.get("platform") or {}
    return _Descriptor(digest, _string(desc.get("mediaType"), f"{what} ({digest}): mediaType"), size,
                       _object(annotations, f"{what} ({digest}): annotations"), _object(platform, f"{what} ({digest}): platform"))


def _oci_manifests(store: BlobStore, index: dict, source: str) -> list[ImageManifest]:
    bound = limits.current()
    result: list[ImageManifest] = []
    top = _list(index.get("manifests"), f"{source}: index.json manifests") if index.get("manifests") is not None else []
    if not top:
        raise ImageError(f"{source}: index.json lists no manifests")
    queue = deque((entry, 1, f"{source}: index.json manifest {position}") for position, entry in enumerate(top))
    listed = len(top)
    seen: set[str] = set()

    def over() -> LimitExceededError:
        return LimitExceededError(
            f"{source}: more than {bound.max_manifests} manifests and indexes reachable from index.json (raise the limit with --max-manifests)")

    if listed > bound.max_manifests:
        raise over()
    while queue:
        entry, depth, what = queue.popleft()
        desc = _descriptor(entry, what)
        if desc.digest in seen:
            continue
        seen.add(desc.digest)
        manifest = _object(store.read_json(blob_name(desc.digest, what), desc.digest, desc.size), f"{source}: manifest {desc.digest}")
        media_type = _string(manifest.get("mediaType"), f"{source}: manifest {desc.digest}: mediaType")
        if desc.media_type in INDEX_TYPES or media_type in INDEX_TYPES or ("manifests" in manifest and "layers" not in manifest):
            if depth >= bound.max_nesting:
                raise LimitExceededError(f"{source}: indexes nested more than {bound.max_nesting} deep")
            children = _list(manifest.get("manifests") or [], f"{source}: index {desc.digest}: manifests")
            listed += len(children)
            if listed > bound.max_manifests:
                raise over()
            queue.extend((child, depth + 1, f"{source}: index {desc.digest} manifest {n}") for n, child in enumerate(children))
            continue
        if "config" not in manifest:
            raise ImageError(f"{source}: manifest {desc.digest} has no config")
        config_desc = _descriptor(manifest["config"], f"{source}: manifest {desc.digest} config")
        if config_desc.media_type.startswith("application/vnd.oci.empty") or "layers" not in manifest:
            continue  # an artifact (SBOM, signature), not an image
        layer_list = _list(manifest["layers"], f"{source}: manifest {desc.digest} layers")
        layers = []
        for position, value in enumerate(layer_list):
            ldesc = _descriptor(value, f"{source}: manifest {desc.digest} layer {position}")
            layers.append(Layer(ldesc.digest, ldesc.media_type, ldesc.size, blob_name(ldesc.digest), ldesc.annotations))
        if manifest.get("subject") and manifest.get("artifactType"):
            continue  # a referrer artifact (SBOM, signature), not an image
        config = _object(store.read_json(blob_name(config_desc.digest), config_desc.digest, config_desc.size),
                         f"{source}: config {config_desc.digest}")
        for layer in layers:
            if not store._exists(layer.name):
                raise ImageError(f"{source}: manifest {desc.digest} points at a missing blob {layer.digest}")
        tag = desc.annotations.get("org.opencontainers.image.ref.name")
        tags = [tag] if isinstance(tag, str) and tag else []
        result.append(ImageManifest(desc.digest, manifest, config, config_desc.digest, layers, desc.platform, tags))
    return result


def _named_digest(name: str) -> str | None:
    """The digest a docker-archive member name states: ``blobs/ALGO/HEX``, ``HEX.tar``, ``HEX.json``."""
    parts = name.split("/")
    if len(parts) == 3 and parts[0] == "blobs":
        return f"{parts[1]}:{parts[2]}"
    if len(parts) == 1:
        stem = parts[0].removesuffix(".tar").removesuffix(".json")
        if stem != parts[0] and _HEX64.fullmatch(stem):
            return f"sha256:{stem}"
    return None


def _docker_manifests(store: BlobStore, source: str) -> list[ImageManifest]:
    bound = limits.current()
    entries = store.read_json("manifest.json")
    if not isinstance(entries, list) or not entries:
        raise ImageError(f"{source}: manifest.json is not a non-empty list")
    if len(entries) > bound.max_manifests:
        raise LimitExceededError(f"{source}: more than {bound.max_manifests} entries in manifest.json (raise the limit with --max-manifests)")
    result = []
    for number, value in enumerate(entries):
        what = f"{source}: manifest.json entry {number}"
        entry = _object(value, what)
        config_name = _string(entry.get("Config"), f"{what}: Config")
        if not config_name:
            raise ImageError(f"{what} has no Config")
        named = _named_digest(config_name)
        if named is not None:
            parse_digest(named, f"{what}: Config {quoted(config_name)}")
        data = store.read_bytes(config_name, named)
        config_digest = named or "sha256:" + hashlib.sha256(data).hexdigest()
        config = _object(parse_json(data, f"{source}: {quoted(config_name)}"), f"{source}: config {quoted(config_name)}")
        rootfs = _object(config.get("rootfs") or {}, f"{source}: config rootfs")
        diff_ids = _list(rootfs.get("diff_ids") or [], f"{source}: config rootfs.diff_ids")
        layer_names = _list(entry.get("Layers") or [], f"{what}: Layers")
        layers = []
        for position, name in enumerate(layer_names):
            name = _string(name, f"{what}: layer {position}")
            if not store._exists(name):
                raise ImageError(f"{source}: manifest.json points at a missing layer {quoted(name)}")
            digest = _named_digest(name)
            if digest is not None:
                parse_digest(digest, f"{source}: layer {quoted(name)}")
                layers.append(Layer(digest, "application/vnd.docker.image.rootfs.diff.tar", None, name))
                continue
            # e.g. classic ``docker save`` (``ID/layer.tar``, ID not a content digest): the
            # uncompressed tar must hash to the config's diff id at the same position
            if position >= len(diff_ids):
                raise ImageError(f"{source}: layer {quoted(name)} has no diff_id in the config to verify it against")
            diff_id = diff_ids[position]
            parse_digest(diff_id, f"{source}: config rootfs.diff_ids[{position}]")
            layers.append(Layer(diff_id, "application/vnd.docker.image.rootfs.diff.tar", None, name, verify_uncompressed=True))
        tags = [t for t in _list(entry.get("RepoTags") or [], f"{what}: RepoTags") if isinstance(t, str) and t]
        result.append(ImageManifest(None, entry, config, config_digest, layers, {}, tags))
    return result


def open_image(spec: str) -> Image:
    """``oci:DIR``, ``oci-archive:FILE``, ``docker-archive:FILE``, or a path that is one of them."""
    prefix, _, rest = spec.partition(":")
    explicit = prefix in ("oci", "oci-archive", "docker-archive") and rest
    path = rest if explicit else spec
    path = path.split(":", 1)[0] if explicit and prefix == "oci" and not os.path.exists(path) else path
    if not os.path.exists(path):
        raise ImageError(f"no such image: {quoted(path)}")
    if os.path.isdir(path):
        if explicit and prefix != "oci":
            raise ImageError(f"{path} is a directory, not a {prefix}")
        store: BlobStore = DirectoryStore(path)
        kind = "oci-layout"
    else:
        if not os.path.isfile(path):
            raise ImageError(f"{path} is not a regular file or directory")
        store = TarStore(path)
        kind = "oci-archive" if store._exists("index.json") and store._exists("oci-layout") else "docker-archive"
        if explicit and prefix == "oci":
            store.close()
            raise ImageError(f"{path} is a file, not an OCI layout directory")
    try:
        budget = limits.Budget(path)
        if kind == "docker-archive" and not store._exists("manifest.json"):
            raise ImageError(f"{path} is not an image: no oci-layout/index.json and no manifest.json")
        if kind != "docker-archive":
            if not store._exists("oci-layout") or not store._exists("index.json"):
                raise ImageError(f"{path} is not an OCI image layout (no oci-layout or index.json)")
            layout = store.read_json("oci-layout")
            if not isinstance(layout, dict) or "imageLayoutVersion" not in layout:
                raise ImageError(f"{path}: oci-layout has no imageLayoutVersion")
            index = _object(store.read_json("index.json"), f"{path}: index.json")
            return Image(path, kind, store, index, _oci_manifests(store, index, path), budget)
        return Image(path, kind, store, None, _docker_manifests(store, path), budget)
    except BaseException:
        store.close()
        raise


def is_image(path: str) -> bool:
    """Cheap sniff: an OCI layout directory, or a tar (plain or gzip) with index.json or manifest.json."""
    if os.path.isdir(path):
        return os.path.isfile(os.path.join(path, "oci-layout"))
    if not os.path.isfile(path):
        return False
    kind = sniff(path)
    if kind not in ("tar", "gzip"):
        return False
    wanted = ("manifest.json", "index.json", "oci-layout")
    bound = limits.current()
    try:
        if kind == "tar":  # random access: headers only, content is seeked over
            with tarfile.open(path, "r:", tarinfo=BoundedTarInfo) as archive:
                return _names_one_of(archive, wanted, bound.max_members)
        with gzip.open(path, "rb") as raw:
            counted = _Counter(raw, limits.Budget(path), None)  # a gzip bomb stops at max_bytes
            with tarfile.open(fileobj=counted, mode="r|", tarinfo=BoundedTarInfo) as archive:  # type: ignore[call-overload]
                return _names_one_of(archive, wanted, bound.max_members)
    except (tarfile.TarError, *STREAM_ERRORS):
        return False


def _names_one_of(archive: tarfile.TarFile, wanted: tuple[str, ...], max_members: int) -> bool:
    """Whether one of the first ``max_members`` members of ``archive`` is named in ``wanted``."""
    for count, member in enumerate(archive):
        if member.name.removeprefix("./") in wanted:
            return True
        if count > max_members:
            return False
    return False
