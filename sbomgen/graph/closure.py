"""Closure walks: from a store path or ``.drv`` to a :class:`DependencyGraph`.

* Runtime: the output's references, transitively; exactly the set ``nix-store -qR`` prints.
* Build time: the derivation graph (``inputDrvs`` and ``inputSrcs``), transitively.  Every
  derivation of ``nix-store -qR X.drv`` is represented by the outputs of it that are actually
  used (the outputs its dependants name in their ``inputDrvs``), and every source path by
  itself, so ``{drv of each output} | {sources}`` equals ``nix-store -qR X.drv``.  Outputs need
  not be built: unbuilt ones are pinned by their declared fixed-output hash or their ``.drv``.
* A ``.drv`` in ``inputSrcs`` (``builtins.unsafeDiscardOutputDependency drv.drvPath``, as in
  nixpkgs' ``closureInfo``, ``dockerTools`` and NixOS tests) is a source: the build sees the
  derivation *file*, not its outputs.  It is a component of its own (a "derivation file",
  property ``nix:derivation_file``), and its store closure (the ``.drv`` files and sources it
  references) is walked like any source's, as ``nix-store -qR X.drv`` does; the outputs of
  those derivations are not build inputs, so they are not walked.

``depth`` limits the walk like sbomnix: the target is depth 0, its direct dependencies depth 1.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from sbomgen.errors import DerivationError, InvalidStorePathError
from sbomgen.graph.identifiers import assign_purl
from sbomgen.graph.model import Component, DependencyGraph, FixedOutput, GraphKind
from sbomgen.graph.names import parse_drv_name, split_output_suffix, strip_source_suffix
from sbomgen.nix.derivation import Derivation, printable, read_derivation
from sbomgen.nix.hashes import parse_ca, parse_hash
from sbomgen.nix.store import NixStore, PathInfo
from sbomgen.nix.storepath import path_name


def _bfs(root: str, neighbours: Callable[[str], Iterable[str]], limit: int | None) -> dict[str, int]:
    """Shortest distance from ``root`` for every node within ``limit`` steps."""
    depth = {root: 0}
    queue = deque([root])
    while queue:
        node = queue.popleft()
        here = depth[node]
        if limit is not None and here >= limit:
            continue
        for nxt in neighbours(node):
            if nxt not in depth:
                depth[nxt] = here + 1
                queue.append(nxt)
    return depth


def _download_urls(drv: Derivation) -> tuple[str, ...]:
    """``urls`` (fetchurl mirrors, space-separated in the env) or ``url`` of a derivation."""
    raw = drv.env.get("urls") or drv.env.get("url")
    if not raw:
        return ()
    return tuple(dict.fromkeys(printable(u) for u in raw.split() if "://" in u))


#: content-addressing methods whose declared hash is a digest in the usual sense
_MODES = ("flat", "recursive", "text", "git")


def _fixed_output(drv: Derivation) -> FixedOutput | None:
    """The declared hash of a fixed-output derivation, as hex; ``None`` for a method or an
    algorithm sbomgen does not know (``blake3``, a method Nix adds later) or a hash it cannot
    read: :func:`_unsupported_hash` then says what was declared."""
    if not drv.is_fixed_output:
        return None
    out = drv.outputs["out"]
    mode, algo = out.mode or "flat", out.algo or "sha256"
    if mode not in _MODES:
        return None
    try:
        digest = parse_hash(out.hash, algo).hex  # hex, Nix base32, base64 or SRI
    except ValueError:
        return None
    return FixedOutput(mode=mode, algo=algo, hash_hex=digest, urls=_download_urls(drv))


def _unsupported_hash(drv: Derivation | None, ca: str | None, fixed: FixedOutput | None) -> str | None:
    """What a fixed-output derivation or the DB ``ca`` declared, when it gave no usable hash."""
    if fixed is not None:
        return None
    if drv is not None and drv.is_fixed_output:
        out = drv.outputs["out"]
        return printable(f"{out.hash_algo}:{out.hash}")
    if ca and ca.startswith("fixed:"):
        return printable(ca)
    return None


def _fixed_output_from_ca(ca: str | None, drv: Derivation | None) -> FixedOutput | None:
    """A fixed-output path's declared hash from the DB ``ca`` column (``fixed:r:sha256:...``,
    ``fixed:git:sha1:...``); ``None`` for one sbomgen cannot read."""
    if drv is not None and drv.is_fixed_output:
        return _fixed_output(drv)
    if not ca or not ca.startswith("fixed:"):
        return None
    try:
        if ca.startswith("fixed:git:"):
            digest = parse_hash(ca.removeprefix("fixed:git:"))
            return FixedOutput(mode="git", algo=digest.algo, hash_hex=digest.hex)
        address = parse_ca(ca)
    except ValueError:
        return None
    return FixedOutput(mode=address.method, algo=address.hash.algo, hash_hex=address.hash.hex)


def _name_version(drv: Derivation | None, fallback_name: str, is_source: bool) -> tuple[str, str]:
    """pname/version env when present, else ``parseDrvName`` (archive suffixes of sources dropped)."""
    if drv is not None:
        pname = printable(drv.env.get("pname") or "")
        version = printable(drv.env.get("version") or "")
        if pname and version:
            return pname, version
        name = printable(drv.name)
        if drv.is_fixed_output or _download_urls(drv):  # a fetch: named after its file
            name = strip_source_suffix(name)[0]
        parsed_name, parsed_version = parse_drv_name(name)
        return pname or parsed_name, version or parsed_version
    name = strip_source_suffix(fallback_name)[0] if is_source else fallback_name
    return parse_drv_name(name)


def _output_name(drv: Derivation | None, path: str) -> str:
    if drv is not None:
        for name, out in drv.outputs.items():
            if out.path == path:
                return name
    return split_output_suffix(path_name(path))[1]


def _component_for_path(path: str, info: PathInfo | None, drv: Derivation | None, drv_hash: str | None) -> Component:
    """A component for a store path, described by its deriver when there is one."""
    is_source = drv is None and (info is None or info.deriver is None)
    if drv is not None:
        output = _output_name(drv, path)
        name, version = _name_version(drv, path_name(path), False)
    elif is_source:
        output = None
        name, version = _name_version(None, path_name(path), True)
    else:
        base, output = split_output_suffix(path_name(path))
        name, version = parse_drv_name(base)
    component = Component(
        store_path=path,
        name=name,
        version=version,
        output=output,
        drv_path=drv.path if drv is not None else (info.deriver if info else None),
        outputs=drv.output_names if drv is not None else ((output,) if output else ()),
        system=printable(drv.system) if drv is not None else None,
        is_source=is_source,
        valid=info is not None,
        nar_hash_hex=info.nar_sha256_hex if info else None,
        nar_size=info.nar_size if info else None,
        drv_nar_hash_hex=drv_hash,
        fixed_output=_fixed_output_from_ca(info.ca if info else None, drv)
        if info
        else (_fixed_output(drv) if drv else None),
    )
    declared = _unsupported_hash(drv, info.ca if info else None, component.fixed_output)
    if declared:  # declared, but not in a form sbomgen reads: said, not guessed
        component.extra["nix:fixed_output_unsupported"] = declared
    if drv is not None and not drv.is_fixed_output:
        urls = _download_urls(drv)
        if urls:  # a fetch Nix cannot check: the URL's content is not pinned by a hash
            component.extra["nix:unpinned_fetch"] = urls[0]
    assign_purl(component)
    return component


def _component_for_drv_file(store: NixStore, path: str, info: PathInfo) -> Component:
    """A ``.drv`` file that is itself an input (a source): named after the derivation it holds."""
    drv = read_derivation(path, store.store_dir)
    name, version = _name_version(drv, path_name(path).removesuffix(".drv"), False)
    component = Component(
        store_path=path,
        name=name,
        version=version,
        output=None,
        outputs=drv.output_names,
        system=printable(drv.system),
        is_source=True,
        nar_hash_hex=info.nar_sha256_hex,
        nar_size=info.nar_size,
    )
    component.extra["nix:derivation_file"] = "the .drv file itself, not its outputs (unsafeDiscardOutputDependency)"
    assign_purl(component)
    return component


def _derivers(store: NixStore, infos: dict[str, PathInfo]) -> dict[str, Derivation]:
    """Parsed derivers of ``infos`` whose ``.drv`` is still on disk."""
    result: dict[str, Derivation] = {}
    for drv_path in {i.deriver for i in infos.values() if i.deriver}:
        if store.has_file(drv_path):
            result[drv_path] = store.derivation(drv_path)
    return result


def runtime_graph(store: NixStore, target: str, depth: int | None = None) -> DependencyGraph:
    """The runtime closure of a built output (or of the outputs of a ``.drv``)."""
    root = target
    if target.endswith(".drv"):
        drv = store.derivation(target)
        outputs = {name: o.path for name, o in drv.outputs.items()} | store.derivation_outputs(target)
        root = outputs[drv.output_names[0]]  # the default output, as nix-build would pick
        if not store.is_valid(root):
            raise InvalidStorePathError(
                f"the outputs of {target} are not built: build it first, or ask for --buildtime"
            )
    infos = store.closure([root])
    depths = _bfs(root, lambda p: (r for r in infos[p].references if r != p and r in infos), depth)
    drvs = _derivers(store, {p: infos[p] for p in depths})
    drv_hashes = {p: i.nar_sha256_hex for p, i in store.path_infos(drvs, references=False).items()}
    components: dict[str, Component] = {}
    edges: dict[str, tuple[str, ...]] = {}
    for path, level in depths.items():
        info = infos[path]
        drv = drvs.get(info.deriver) if info.deriver else None
        if path.endswith(".drv") and not info.deriver:  # an output that refers to a .drv file
            component = _component_for_drv_file(store, path, info)
        else:
            component = _component_for_path(path, info, drv, drv_hashes.get(info.deriver or ""))
        component.depth = level
        components[path] = component
        edges[path] = tuple(r for r in info.references if r != path and r in depths)
    cut = frozenset(p for p in depths if any(r != p and r not in depths for r in infos[p].references)) if depth is not None else None
    return DependencyGraph(GraphKind.RUNTIME, store.store_dir, root, components, edges, depth, cut)


def _output_path(store: NixStore, drv: Derivation, output: str) -> str:
    path = drv.outputs[output].path if output in drv.outputs else ""
    if not path and drv.path:  # floating content-addressed output: known only once built
        path = store.derivation_outputs(drv.path).get(output, "")
    if not path:
        # Not built and not input-addressed: name it after the drv so it stays unique.
        path = f"{drv.path}!{output}"
    return path


def buildtime_graph(store: NixStore, target: str, depth: int | None = None) -> DependencyGraph:
    """The build-time closure: derivations (as their used outputs) and sources, transitively."""
    if target.endswith(".drv"):
        root_drv_path = target
        root_drv = store.derivation(target)
        root_output = root_drv.output_names[0]  # the default output
    else:
        info = store.path_infos([target]).get(target)
        if info is None:
            store.require_valid(target)
        if info is None or not info.deriver:
            raise InvalidStorePathError(
                f"{target} has no deriver in the store database: it is a source, so it has no build-time closure"
            )
        root_drv_path = info.deriver
        root_drv = store.derivation(root_drv_path)
        root_output = _output_name(root_drv, target)

    drvs = {d.path: d for d in store.derivation_closure(root_drv_path)}
    used: dict[str, set[str]] = {root_drv_path: {root_output}}
    for drv in drvs.values():
        for dep, outs in drv.input_drvs.items():
            used.setdefault(dep, set()).update(outs)

    node_path: dict[tuple[str, str], str] = {}
    for drv_path, outs in used.items():
        for out in outs:
            node_path[(drv_path, out)] = _output_path(store, drvs[drv_path], out)

    src_roots = sorted({s for d in drvs.values() for s in d.input_srcs})
    registered = store.path_infos(src_roots, references=False)
    for drv in drvs.values():  # Nix registers a .drv only once its inputs are: a tampered one
        for src in drv.input_srcs:
            if src not in registered:
                raise DerivationError(
                    f"corrupt derivation {drv.path}: input source {src!r} is not a valid path in the store database"
                )
    # every path in the closure of the sources, .drv files included (a .drv in inputSrcs)
    sources = store.closure(src_roots) if src_roots else {}

    deps: dict[str, tuple[str, ...]] = {}
    for (drv_path, _out), path in node_path.items():
        drv = drvs[drv_path]
        inputs = [node_path[(dep, o)] for dep, outs in drv.input_drvs.items() for o in sorted(outs)]
        deps[path] = tuple(dict.fromkeys([*inputs, *drv.input_srcs]))
    for path, info in sources.items():
        deps[path] = tuple(r for r in info.references if r != path and r in sources)

    root = node_path[(root_drv_path, root_output)]
    depths = _bfs(root, lambda p: deps.get(p, ()), depth)

    wanted_outputs = [p for p in depths if p not in sources]
    infos = store.path_infos([*wanted_outputs, *drvs], references=False)
    path_to_node = {path: key for key, path in node_path.items()}
    components: dict[str, Component] = {}
    for path, level in depths.items():
        if path in sources:
            if path.endswith(".drv"):
                component = _component_for_drv_file(store, path, sources[path])
            else:
                component = _component_for_path(path, sources[path], None, None)
        else:
            drv_path, _out = path_to_node[path]
            drv_info = infos.get(drv_path)
            component = _component_for_path(
                path, infos.get(path), drvs[drv_path], drv_info.nar_sha256_hex if drv_info else None
            )
            component.drv_path = drv_path
        component.depth = level
        components[path] = component
    edges = {p: tuple(d for d in deps.get(p, ()) if d in depths) for p in depths}
    cut = frozenset(p for p in depths if any(d not in depths for d in deps.get(p, ()))) if depth is not None else None
    return DependencyGraph(GraphKind.BUILDTIME, store.store_dir, root, components, edges, depth, cut)

