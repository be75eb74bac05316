"""Writing deterministic layered images: OCI layouts, oci-archives and docker-archives.

Determinism: entries sorted by name, mtime fixed (``SOURCE_DATE_EPOCH`` or 1), uid/gid 0 with
empty owner names, gzip without mtime or file name at a fixed level, JSON with sorted keys and
no spaces. Two runs give byte-identical blobs, and the same store path gives the same layer
blob in any image. Layers are streamed (tar -> gzip -> temp file, hashed on the way), so
memory stays bounded whatever the closure size.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import stat
import tarfile
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sbomgen.errors import OutputFormatError, OutputWriteError
from sbomgen.fsutil import replacing

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_JSON = b"{}"
FORMATS = ("oci", "oci-archive", "docker-archive")
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "armv7l": "arm", "riscv64": "riscv64", "powerpc64le": "ppc64le"}


def canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def architecture(system: str) -> tuple[str, str]:
    """Nix system (``x86_64-linux``) -> OCI (architecture, os)."""
    cpu, _, kernel = system.partition("-")
    return _ARCH.get(cpu, cpu), kernel or "linux"


@dataclass(slots=True)
class Blob:
    digest: str
    size: int
    media_type: str
    path: str
    diff_id: str | None = None  # sha256 of the uncompressed tar, for layers
    uncompressed_size: int | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    artifact_type: str | None = None  # referrer manifests: their artifactType, repeated in descriptors

    def descriptor(self) -> dict:
        desc = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.artifact_type:
            desc["artifactType"] = self.artifact_type
        if self.annotations:
            desc["annotations"] = dict(sorted(self.annotations.items()))
        return desc


class _HashingFile:
    """Writes through to ``raw`` while hashing and counting."""

    def __init__(self, raw):
        self.raw = raw
        self.hasher = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self.hasher.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


class BlobStore:
    """Blobs written into a scratch directory, content-addressed."""

    def __init__(self, directory: str):
        self.directory = directory
        os.makedirs(os.path.join(directory, "blobs", "sha256"), exist_ok=True)

    def _final(self, tmp: str, digest_hex: str) -> str:
        final = os.path.join(self.directory, "blobs", "sha256", digest_hex)
        os.replace(tmp, final)
        return final

    def add_bytes(self, data: bytes, media_type: str) -> Blob:
        digest = hashlib.sha256(data).hexdigest()
        path = os.path.join(self.directory, "blobs", "sha256", digest)
        with open(path, "wb") as handle:
            handle.write(data)
        return Blob(f"sha256:{digest}", len(data), media_type, path)

    def add_layer(self, entries, mtime: int) -> Blob:
        """A gzip'd tar layer of ``entries`` (see :func:`store_path_entries`)."""
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".layer-")
        with os.fdopen(fd, "wb") as raw:
            compressed = _HashingFile(raw)
            with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=6) as gz:
                uncompressed = _HashingFile(gz)
                with tarfile.open(fileobj=uncompressed, mode="w|", format=tarfile.GNU_FORMAT) as tar:
                    for info, source in entries:
                        info.mtime = mtime
                        if source is None:
                            tar.addfile(info)
                        else:
                            with open(source, "rb") as handle:
                                tar.addfile(info, handle)
        path = self._final(tmp, compressed.hasher.hexdigest())
        return Blob(
            f"sha256:{compressed.hasher.hexdigest()}", compressed.size, LAYER, path,
            f"sha256:{uncompressed.hasher.hexdigest()}", uncompressed.size,
        )


def _info(name: str, kind: bytes, mode: int, size: int = 0, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.linkname = kind, mode, size, linkname
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _parents(store_dir: str) -> list[tarfile.TarInfo]:
    """``nix/``, ``nix/store/``: the store directory's own entries, in every store path layer."""
    parts = store_dir.strip("/").split("/")
    return [_info("/".join(parts[: i + 1]), tarfile.DIRTYPE, 0o755) for i in range(len(parts))]


def store_path_entries(store_dir: str, paths: list[str]):
    """Tar entries (sorted, store-relative names, owner 0) for the given store paths."""
    yield from ((info, None) for info in _parents(store_dir))
    prefix = store_dir.strip("/")
    for path in sorted(paths):
        base = os.path.basename(path)
        yield from _tree_entries(path, f"{prefix}/{base}")


def _tree_entries(root: str, name: str):
    st = os.lstat(root)
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        yield _info(name, tarfile.SYMTYPE, 0o777, linkname=os.readlink(root)), None
    elif stat.S_ISREG(st.st_mode):
        yield _info(name, tarfile.REGTYPE, mode, size=st.st_size), root
    elif stat.S_ISDIR(st.st_mode):
        yield _info(name, tarfile.DIRTYPE, mode), None
        for child in sorted(os.listdir(root)):
            yield from _tree_entries(os.path.join(root, child), f"{name}/{child}")
    else:
        raise OutputFormatError(f"cannot put {root} in an image layer: not a file, directory or symlink")


def contents_entries(contents: list[str]):
    """The customisation layer: the trees of ``contents`` linked into /, like dockerTools' contents.

    Directories become real directories, everything else a symlink to the store path's file;
    when two contents provide the same path, the first (in the order given) wins.
    """
    seen: dict[str, tuple[tarfile.TarInfo, None]] = {}
    for content in contents:
        for dirpath, dirnames, filenames in os.walk(content):
            dirnames.sort()
            rel = os.path.relpath(dirpath, content)
            for name in sorted(dirnames):
                entry = os.path.normpath(os.path.join(rel, name))
                full = os.path.join(dirpath, name)
                if os.path.islink(full):
                    seen.setdefault(entry, (_info(entry, tarfile.SYMTYPE, 0o777, linkname=full), None))
                else:
                    seen.setdefault(entry, (_info(entry, tarfile.DIRTYPE, 0o755), None))
            for name in sorted(filenames):
                entry = os.path.normpath(os.path.join(rel, name))
                seen.setdefault(entry, (_info(entry, tarfile.SYMTYPE, 0o777, linkname=os.path.join(dirpath, name)), None))
    for name in sorted(seen):
        yield seen[name]


@dataclass(slots=True)
class ImageConfig:
    name: str
    tag: str
    system: str
    created: datetime
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    working_dir: str | None = None
    exposed_ports: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)

    def iso_created(self) -> str:
        return self.created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_config(spec: ImageConfig, layers: list[Blob], history: list[str]) -> dict:
    arch, os_name = architecture(spec.system)
    config: dict[str, object] = {}
    if spec.entrypoint:
        config["Entrypoint"] = spec.entrypoint
    if spec.cmd:
        config["Cmd"] = spec.cmd
    if spec.env:
        config["Env"] = spec.env
    if spec.working_dir:
        config["WorkingDir"] = spec.working_dir
    if spec.exposed_ports:
        config["ExposedPorts"] = {port if "/" in port else f"{port}/tcp": {} for port in spec.exposed_ports}
    if spec.labels:
        config["Labels"] = dict(sorted(spec.labels.items()))
    created = spec.iso_created()
    return {
        "architecture": arch,
        "os": os_name,
        "created": created,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created": created, "created_by": line, "comment": "sbomgen"} for line in history],
    }


@dataclass(slots=True)
class BuiltImage:
    directory: str  # the OCI layout (scratch until written out)
    manifest: Blob
    config: Blob
    layers: list[Blob]
    index: dict
    referrers: list[Blob] = field(default_factory=list)


def assemble(store: BlobStore, spec: ImageConfig, layers: list[Blob], history: list[str]) -> BuiltImage:
    config_blob = store.add_bytes(canonical_json(build_config(spec, layers, history)), CONFIG)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": config_blob.descriptor(),
        "layers": [layer.descriptor() for layer in layers],
        "annotations": {"org.opencontainers.image.created": spec.iso_created(), "org.opencontainers.image.title": spec.name},
    }
    manifest_blob = store.add_bytes(canonical_json(manifest), MANIFEST)
    manifest_blob.annotations = {
        "io.containerd.image.name": f"{spec.name}:{spec.tag}",
        "org.opencontainers.image.ref.name": spec.tag,
    }
    index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": [manifest_blob.descriptor()]}
    return BuiltImage(store.directory, manifest_blob, config_blob, layers, index)


def attach_referrer(store: BlobStore, image: BuiltImage, payload: bytes, artifact_type: str, created: str) -> Blob:
    """An OCI 1.1 referrer artifact: a manifest with ``subject`` = the image and one blob, typed
    ``artifact_type`` in both its ``artifactType`` and the layer's ``mediaType`` (like cosign's
    attestations and oras). It is only stored: :func:`index_referrers` decides who can find it."""
    empty = store.add_bytes(EMPTY_JSON, EMPTY)
    data = store.add_bytes(payload, artifact_type)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": artifact_type,
        "config": empty.descriptor(),
        "layers": [data.descriptor()],
        "subject": {"mediaType": MANIFEST, "digest": image.manifest.digest, "size": image.manifest.size},
        "annotations": {"org.opencontainers.image.created": created},
    }
    blob = store.add_bytes(canonical_json(manifest), MANIFEST)
    blob.artifact_type = artifact_type
    blob.annotations = dict(manifest["annotations"])
    image.referrers.append(blob)
    return blob


#: how a layout lists its referrers (``sbomgen image --referrers``), see docs/images.md
REFERRERS_MODES = ("blobs", "index", "tag")


def referrers_tag(digest: str) -> str:
    """The distribution spec's referrers tag schema: ``sha256:<hex>`` -> ``sha256-<hex>``."""
    algorithm, _, hex_digest = digest.partition(":")
    return f"{algorithm}-{hex_digest}"


def index_referrers(store: BlobStore, image: BuiltImage, mode: str) -> Blob | None:
    """List the image's referrers in ``index.json`` as ``mode`` says:

    * ``blobs``: not at all: they are in ``blobs/`` (the image layout spec allows blobs no ref
      names), and ``index.json`` names the image alone, so untagged reads (``skopeo inspect
      oci:DIR``) work;
    * ``index``: each referrer manifest is a descriptor of ``index.json`` with its
      ``artifactType`` (what oras and regclient write in layouts);
    * ``tag``: the distribution spec's referrers tag schema: an image index of the referrers'
      descriptors, tagged ``sha256-<hex of the image manifest digest>`` (what registries
      without the referrers API and cosign's tag scheme read). Returns that index."""
    if mode not in REFERRERS_MODES:
        raise OutputFormatError(f"unknown referrers mode {mode!r} (choose from: {', '.join(REFERRERS_MODES)})")
    if not image.referrers or mode == "blobs":
        return None
    if mode == "index":
        image.index["manifests"].extend(r.descriptor() for r in image.referrers)
        return None
    referrers = {"schemaVersion": 2, "mediaType": INDEX, "manifests": [r.descriptor() for r in image.referrers]}
    blob = store.add_bytes(canonical_json(referrers), INDEX)
    blob.annotations = {"org.opencontainers.image.ref.name": referrers_tag(image.manifest.digest)}
    image.index["manifests"].append(blob.descriptor())
    return blob


#: index.json annotation that marks a layout sbomgen wrote: only such a layout may be replaced
#: (with ``--force``); any other non-empty path is refused, never deleted
MARKER_KEY = "dev.sbomgen.image.layout"
MARKER_VALUE = "sbomgen"


def _index_bytes(image: BuiltImage) -> bytes:
    annotations = {**image.index.get("annotations", {}), MARKER_KEY: MARKER_VALUE}
    return canonical_json({**image.index, "annotations": dict(sorted(annotations.items()))})


def _write_layout_files(image: BuiltImage) -> None:
    with open(os.path.join(image.directory, "oci-layout"), "wb") as handle:
        handle.write(canonical_json({"imageLayoutVersion": "1.0.0"}))
    with open(os.path.join(image.directory, "index.json"), "wb") as handle:
        handle.write(_index_bytes(image))


def _tar_entry(tar: tarfile.TarFile, name: str, mtime: int, source: str | None = None, data: bytes | None = None, is_dir: bool = False) -> None:
    info = _info(name, tarfile.DIRTYPE if is_dir else tarfile.REGTYPE, 0o755 if is_dir else 0o644)
    info.mtime = mtime
    if data is not None:
        info.size = len(data)
        import io

        tar.addfile(info, io.BytesIO(data))
    elif source is not None:
        info.size = os.path.getsize(source)
        with open(source, "rb") as handle:
            tar.addfile(info, handle)
    else:
        tar.addfile(info)


def write_output(image: BuiltImage, spec: ImageConfig, output: str, fmt: str, mtime: int, force: bool = False) -> None:
    """Write the image as ``fmt`` to ``output``, destroying nothing.

    A layout (``oci``) goes to a new path (built beside it, then renamed into place), into an
    empty directory, or over a layout sbomgen wrote before when ``force`` is given; any other
    existing path is refused (:class:`OutputWriteError`). An archive is an output file like any
    other (:func:`sbomgen.fsutil.open_output`): a regular file is replaced atomically, ``-``, a
    FIFO or a device is streamed to, a symlink is written through.
    """
    if fmt not in FORMATS:
        raise OutputFormatError(f"unknown image format {fmt!r} (choose from: {', '.join(FORMATS)})")
    _write_layout_files(image)
    if fmt == "oci":
        _write_layout_dir(image, output, force)
        return
    from sbomgen.fsutil import open_output

    with open_output(output) as raw, tarfile.open(fileobj=raw, mode="w|", format=tarfile.GNU_FORMAT) as tar:
        if fmt == "oci-archive":
            _tar_entry(tar, "blobs", mtime, is_dir=True)
            _tar_entry(tar, "blobs/sha256", mtime, is_dir=True)
            for name in sorted(os.listdir(os.path.join(image.directory, "blobs", "sha256"))):
                _tar_entry(tar, f"blobs/sha256/{name}", mtime, os.path.join(image.directory, "blobs", "sha256", name))
            _tar_entry(tar, "index.json", mtime, os.path.join(image.directory, "index.json"))
            _tar_entry(tar, "oci-layout", mtime, os.path.join(image.directory, "oci-layout"))
        else:
            _write_docker_archive(tar, image, spec, mtime)


def _blob_names(image: BuiltImage) -> list[str]:
    return sorted(n for n in os.listdir(os.path.join(image.directory, "blobs", "sha256")) if not n.startswith("."))


def previous_layout_blobs(path: str) -> list[str] | None:
    """The blobs of ``path`` when it is exactly a layout sbomgen wrote (oci-layout, an index.json
    with sbomgen's marker, blobs/sha256/<hex> regular files and nothing else, no symlinks);
    ``None`` for anything else."""
    try:
        if set(os.listdir(path)) - {"oci-layout", "index.json", "blobs"}:
            return None
        for name in ("oci-layout", "index.json"):
            if not stat.S_ISREG(os.lstat(os.path.join(path, name)).st_mode):
                return None
        blobs = os.path.join(path, "blobs")
        if not stat.S_ISDIR(os.lstat(blobs).st_mode) or os.listdir(blobs) != ["sha256"]:
            return None
        sha256 = os.path.join(blobs, "sha256")
        if not stat.S_ISDIR(os.lstat(sha256).st_mode):
            return None
        names = os.listdir(sha256)
        for name in names:
            if len(name) != 64 or set(name) - set("0123456789abcdef") or not stat.S_ISREG(os.lstat(os.path.join(sha256, name)).st_mode):
                return None
        index_path = os.path.join(path, "index.json")
        if os.lstat(index_path).st_size > 16 << 20:
            return None
        with open(index_path, "rb") as handle:
            index = json.load(handle)
    except (OSError, ValueError):
        return None
    annotations = index.get("annotations") if isinstance(index, dict) else None
    if not isinstance(annotations, dict) or annotations.get(MARKER_KEY) != MARKER_VALUE:
        return None
    return names


def check_output(output: str, fmt: str, force: bool = False) -> None:
    """Fail now, before any packing, if ``output`` would be refused later."""
    if fmt not in FORMATS:
        raise OutputFormatError(f"unknown image format {fmt!r} (choose from: {', '.join(FORMATS)})")
    if fmt == "oci":
        target, _old = _layout_target(output, force)
        parent = os.path.dirname(target)
        if not os.path.isdir(parent):
            raise OutputWriteError(f"cannot write {output}: the directory {parent} does not exist")
    else:
        from sbomgen.fsutil import check_writable

        check_writable(output)


def _layout_target(output: str, force: bool) -> tuple[str, list[str] | None]:
    """Where a layout goes, and the blobs of the previous sbomgen layout there (``[]`` for an
    empty directory, ``None`` for a new path); refuses every other existing path."""
    if output == "-":
        raise OutputWriteError("an image layout (--format oci) is a directory: it cannot go to stdout (use --format oci-archive)")
    target = os.path.abspath(output)
    if os.path.islink(target):
        target = os.path.realpath(target)  # a symlink to a directory: write into what it names
    try:
        existing = os.listdir(target) if os.path.lexists(target) else None
    except NotADirectoryError:
        raise OutputWriteError(f"cannot write the image layout {output}: it exists and is not a directory (choose a new path)") from None
    except OSError as exc:
        raise OutputWriteError(f"cannot write the image layout {output}: {exc.strerror or exc}") from None
    if not existing:
        return target, existing
    previous = previous_layout_blobs(target)
    if previous is None:
        raise OutputWriteError(f"cannot write the image layout {output}: it exists and is not empty, and is not an image "
                               "sbomgen wrote (nothing was changed; choose a new or empty directory)")
    if not force:
        raise OutputWriteError(f"cannot write the image layout {output}: it holds an image sbomgen wrote before "
                               "(give --force to replace it)")
    return target, previous


def _write_layout_dir(image: BuiltImage, output: str, force: bool) -> None:
    target, old_blobs = _layout_target(output, force)
    if old_blobs is None:
        _new_layout_dir(image, output, target)
    else:
        _fill_layout_dir(image, output, target, old_blobs)


def _new_layout_dir(image: BuiltImage, output: str, target: str) -> None:
    """Build the layout in a new directory beside ``target``, then rename it into place: the
    path shows a complete image or nothing. The staging directory is ours: removed on failure."""
    parent = os.path.dirname(target)
    staging = None
    try:
        staging = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.", dir=parent)
        os.makedirs(os.path.join(staging, "blobs", "sha256"))
        for name in _blob_names(image):
            shutil.copyfile(os.path.join(image.directory, "blobs", "sha256", name), os.path.join(staging, "blobs", "sha256", name))
        for name in ("oci-layout", "index.json"):
            shutil.copyfile(os.path.join(image.directory, name), os.path.join(staging, name))
        _chmod_layout(staging)
        os.rename(staging, target)  # fails, touching nothing, if target appeared meanwhile
        staging = None
    except FileNotFoundError as exc:
        if staging is None and not os.path.isdir(parent):
            raise OutputWriteError(f"cannot write {output}: the directory {parent} does not exist") from None
        raise OutputWriteError(f"cannot write {output}: {exc.strerror or exc}") from None
    except OSError as exc:
        raise OutputWriteError(f"cannot write {output}: {exc.strerror or exc}") from None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def _chmod_layout(root: str) -> None:
    umask = os.umask(0)
    os.umask(umask)
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o777 & ~umask)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o666 & ~umask)


def _fill_layout_dir(image: BuiltImage, output: str, target: str, old_blobs: list[str]) -> None:
    """Write the layout into the existing directory ``target`` (empty, or a layout sbomgen
    wrote): new blobs first, then oci-layout and index.json each by rename (the index is the
    commit point), then the old blobs the new index no longer needs. Only files this writes or
    that the previous sbomgen layout held are ever removed; no directory is."""
    sha256 = os.path.join(target, "blobs", "sha256")
    added: list[str] = []
    committed = False
    umask = os.umask(0)
    os.umask(umask)
    try:
        for directory in (os.path.join(target, "blobs"), sha256):
            if not os.path.isdir(directory):
                os.mkdir(directory)
                added.append(directory)
        for name in _blob_names(image):
            # copied even when the old layout has a blob of that name: its content is not ours
            # to trust (a rename replaces it with the bytes just hashed)
            final = os.path.join(sha256, name)
            existed = os.path.lexists(final)
            _copy_in(os.path.join(image.directory, "blobs", "sha256", name), final, umask)
            if not existed:
                added.append(final)
        for name in ("oci-layout", "index.json"):
            _copy_in(os.path.join(image.directory, name), os.path.join(target, name), umask)
        committed = True
    except OSError as exc:
        raise OutputWriteError(f"cannot write {output}: {exc.strerror or exc}") from None
    finally:
        if not committed:
            for path in reversed(added):
                try:
                    os.rmdir(path) if path.endswith(("/blobs", "/sha256")) else os.unlink(path)
                except OSError:
                    pass
    keep = set(_blob_names(image))
    for name in old_blobs:
        if name not in keep:
            try:
                os.unlink(os.path.join(sha256, name))
            except OSError:
                pass


def _copy_in(source: str, final: str, umask: int) -> None:
    """Copy ``source`` to ``final`` through a temporary file beside it and a rename."""
    with replacing(final, 0o666 & ~umask) as handle, open(source, "rb") as src:
        shutil.copyfileobj(src, handle, 1 << 20)


def _write_docker_archive(tar: tarfile.TarFile, image: BuiltImage, spec: ImageConfig, mtime: int) -> None:
    """docker save / dockerTools shape: <config>.json, <diff id>/layer.tar (uncompressed), manifest.json."""
    config_name = image.config.digest.split(":")[1] + ".json"
    _tar_entry(tar, config_name, mtime, image.config.path)
    layer_names = []
    for layer in image.layers:
        directory = layer.diff_id.split(":")[1]
        layer_names.append(f"{directory}/layer.tar")
        _tar_entry(tar, directory, mtime, is_dir=True)
        info = _info(f"{directory}/layer.tar", tarfile.REGTYPE, 0o644, size=layer.uncompressed_size or 0)
        info.mtime = mtime
        with gzip.open(layer.path, "rb") as stream:
            tar.addfile(info, stream)
    manifest = [{"Config": config_name, "RepoTags": [f"{spec.name}:{spec.tag}"], "Layers": layer_names}]
    _tar_entry(tar, "manifest.json", mtime, data=canonical_json(manifest))
    repositories = {spec.name: {spec.tag: layer_names[-1].split("/")[0]}} if layer_names else {}
    _tar_entry(tar, "repositories", mtime, data=canonical_json(repositories))
