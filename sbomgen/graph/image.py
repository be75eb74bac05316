"""The graph of an image: the image as root, every store path it contains as a component.

A store path the local store knows (same path, valid in the DB) is described from its
derivation like any runtime component; one it does not is described from its name alone.
Either way its digest is the NAR hash recomputed from the image's own files (a local DB hash
that disagrees is recorded too), and its references are those found in the image.
"""

from __future__ import annotations

import os

from packageurl import PackageURL

from sbomgen.errors import SbomgenError
from sbomgen.graph.closure import _component_for_path, _derivers
from sbomgen.graph.identifiers import assign_purl
from sbomgen.graph.model import Component, DependencyGraph, DigestOf, GraphKind
from sbomgen.graph.names import parse_drv_name, split_output_suffix
from sbomgen.nix.store import NixStore
from sbomgen.nix.storepath import path_name
from sbomgen.oci.contents import ImageContents

MAX_OUTSIDE_LISTED = 200


def _local_store(store_dir: str, db_path: str | None) -> NixStore | None:
    """The local store, when it is the image's store directory and its DB is readable."""
    env_store = os.environ.get("NIX_STORE_DIR", "").rstrip("/") or "/nix/store"
    if env_store != store_dir and os.path.realpath(env_store) != store_dir:
        return None  # the image's store directory is not ours: nothing local describes its paths
    store = NixStore(store_dir, db_path=db_path)
    try:
        store.conn  # noqa: B018 - opening checks the DB
    except SbomgenError:
        return None
    return store


def image_name(contents: ImageContents) -> tuple[str, str]:
    """(name, tag) from the image's own tags and annotations, whatever their JSON types."""
    manifest = contents.manifest
    tags = [t for t in manifest.tags or [] if isinstance(t, str) and t]
    annotations = manifest.manifest.get("annotations") if isinstance(manifest.manifest, dict) else None
    title = annotations.get("org.opencontainers.image.title") if isinstance(annotations, dict) else None
    if tags and ":" in tags[0] and "/" not in tags[0].rsplit(":", 1)[1]:
        name, tag = tags[0].rsplit(":", 1)
        if name and tag:
            return name, tag
    fallback = os.path.basename(os.path.abspath(contents.image.source).rstrip("/")) or "image"
    return (title if isinstance(title, str) and title else fallback), tags[0] if tags else "latest"


def image_graph(contents: ImageContents, db_path: str | None = None) -> DependencyGraph:
    name, tag = image_name(contents)
    digest = contents.manifest.digest or contents.manifest.config_digest
    root_key = f"oci-image:{name}:{tag}@{digest}"
    root = Component(store_path=root_key, name=name, version=tag, output=None)
    if digest.startswith("sha256:"):
        root.explicit_digest = (DigestOf.OCI_MANIFEST, digest[7:])
    root.purl = PackageURL(type="oci", name=name.rsplit("/", 1)[-1] or "image", version=digest, qualifiers={"tag": tag}).to_string()
    root.extra = {
        "oci:kind": contents.image.kind,
        "oci:manifest_digest": contents.manifest.digest or "",
        "oci:config_digest": contents.manifest.config_digest,
        "oci:layers": " ".join(layer.digest for layer in contents.manifest.layers),
        "oci:files_outside_store": str(len(contents.outside)),
    }
    for index, (path, kind, target) in enumerate(contents.outside[:MAX_OUTSIDE_LISTED]):
        root.extra[f"oci:outside:{index:04d}"] = f"{path} ({kind}{' -> ' + target if target else ''})"

    components: dict[str, Component] = {root_key: root}
    edges: dict[str, tuple[str, ...]] = {root_key: tuple(contents.store_paths)}
    store_dir = sorted(contents.store_dirs)[0] if contents.store_dirs else "/nix/store"
    local = _local_store(store_dir, db_path) if contents.store_paths else None
    infos = local.path_infos(contents.store_paths) if local else {}
    drvs = _derivers(local, infos) if local else {}
    drv_hashes = {p: i.nar_sha256_hex for p, i in local.path_infos(drvs).items()} if local else {}
    for path, entry in contents.store_paths.items():
        info = infos.get(path)
        if info is not None:
            drv = drvs.get(info.deriver) if info.deriver else None
            component = _component_for_path(path, info, drv, drv_hashes.get(info.deriver or ""))
            if component.nar_hash_hex != entry.nar_sha256:
                component.extra["nix:local_nar_sha256"] = component.nar_hash_hex or ""
        else:
            base, output = split_output_suffix(path_name(path))
            pname, version = parse_drv_name(base)
            component = Component(store_path=path, name=pname, version=version, output=output)
            component.extra["nix:described_from"] = "store path name (not in the local store)"
            assign_purl(component)
        component.nar_hash_hex = entry.nar_sha256
        component.nar_size = entry.nar_size
        component.depth = 1
        component.extra["oci:layers"] = " ".join(entry.layers)
        components[path] = component
        edges[path] = entry.references
    return DependencyGraph(GraphKind.IMAGE, store_dir, root_key, components, edges, None)
