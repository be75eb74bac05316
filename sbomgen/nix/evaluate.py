"""Targets given as Nix expressions or flake references, and their metadata, in one evaluation.

``sbomgen -f FILE.nix -A ATTR --arg N EXPR --argstr N VALUE`` means what ``nix-build`` means by
it; ``PATH#ATTR`` (``.#weather``, ``path:/src#app``, ``github:o/r#x``) is a flake output as
``nix build`` finds it (``packages.<system>.ATTR``, then ``legacyPackages.<system>.ATTR``, then
``ATTR``; ``PATH#`` is ``packages.<system>.default`` / ``defaultPackage.<system>``).

One Nix evaluation (:data:`WALKER`, run by :func:`evaluate`) does everything:

* it selects the target derivation and writes its ``.drv`` files to the store
  (``nix-instantiate --read-write-mode --eval``, or ``nix eval`` for flakes): a build-time SBOM
  needs nothing more, never a build;
* it walks every derivation reachable from the target through its attributes the way nixpkgs
  passes dependencies (``buildInputs``, ``nativeBuildInputs``, ``src``, ``stdenv``, any
  attribute that holds a derivation or a list of them, read from ``drvAttrs``, i.e. what the
  builder is given), with ``builtins.genericClosure`` keyed by ``drvPath`` (no cycles, each
  derivation once), to a bounded depth, and each attribute under ``tryEval`` (an attribute that
  throws is skipped, not fatal);
* for each it returns ``name``, ``pname``, ``version``, the attribute path it was reached by
  and a JSON-safe copy of ``meta`` (functions dropped; a ``meta`` that throws is none),
  keyed by ``drvPath``: metadata is matched to components by derivation, never by name.

Only stable CLI surfaces are used: ``nix-instantiate --eval --strict --json --read-write-mode``
(Nix 2.3 and later, Lix) for files, and for flakes ``nix eval --json --impure --expr`` with
``builtins.getFlake`` (needs the ``nix-command`` and ``flakes`` features, which are passed
with ``--extra-experimental-features``).  Parameters reach the expression through environment
variables (``SBOMGEN_EVAL_*``), never spliced into Nix source; ``--arg``/``--argstr`` are
Nix's own auto-arguments.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from typing import Any

from sbomgen import limits
from sbomgen.errors import InputNotFoundError, NixCommandError, UsageError
from sbomgen.nix.cli import _tool

#: how far from the target the metadata walk goes (attributes of attributes ...)
DEFAULT_DEPTH = 64

#: ``meta`` attributes kept (the rest of nixpkgs' meta is about Hydra and platforms)
META_KEYS = ("description", "homepage", "license", "maintainers", "identifiers", "unfree", "downloadPage", "changelog", "position")

WALKER = r"""
{ ... }@autoArgs:
let
  inherit (builtins) getEnv fromJSON tryEval isAttrs isList isFunction attrNames filter concatLists genList length elemAt;
  userArgs = removeAttrs autoArgs [ "__sbomgen" ];
  attrPath = fromJSON (getEnv "SBOMGEN_EVAL_ATTR");
  flakeRef = getEnv "SBOMGEN_EVAL_FLAKE";
  file = getEnv "SBOMGEN_EVAL_FILE";
  maxDepth = fromJSON (getEnv "SBOMGEN_EVAL_DEPTH");
  metaKeys = fromJSON (getEnv "SBOMGEN_EVAL_META_KEYS");
  system = builtins.currentSystem;
  ok = v: (tryEval v).success;
  try = v: let r = tryEval v; in if r.success then r.value else null;
  tryDeep = v: let r = tryEval (builtins.deepSeq v v); in if r.success then r.value else null;
  isDrv = v: try (isAttrs v && (v.type or null) == "derivation") == true;
  # nix-build's auto-call: a function is called with the --arg/--argstr values it names
  call = f: if isFunction f then
      (let formals = builtins.functionArgs f; in f (if formals == { } then userArgs else builtins.intersectAttrs formals userArgs))
    else f;
  step = v: name:
    let v' = call v; in
    if isList v' && builtins.match "[0-9]+" name != null && fromJSON name < length v' then elemAt v' (fromJSON name)
    else if isAttrs v' && v' ? ${name} then v'.${name}
    else throw "sbomgen: attribute '${name}' in selection path '${builtins.concatStringsSep "." attrPath}' not found";
  select = v: path: call (builtins.foldl' step v path);
  hasPath = v: path: path == [ ] || (isAttrs v && v ? ${builtins.head path} && hasPath v.${builtins.head path} (builtins.tail path));
  fromFlake =
    let
      flake = builtins.getFlake flakeRef;
      candidates = if attrPath == [ ] then [ [ "packages" system "default" ] [ "defaultPackage" system ] ]
        else [ ([ "packages" system ] ++ attrPath) ([ "legacyPackages" system ] ++ attrPath) attrPath ];
      found = filter (hasPath flake) candidates;
    in if found == [ ] then throw "sbomgen: flake '${flakeRef}' does not provide '${builtins.concatStringsSep "." attrPath}' (tried packages.${system}, legacyPackages.${system} and the top level)"
       else select flake (builtins.head found);
  root = if flakeRef != "" then fromFlake else select (import file) attrPath;
  # the derivations an attribute value holds: itself, or the derivations of a list
  drvsIn = name: v:
    if isDrv v then [ { inherit name; drv = v; } ]
    else if try (isList v) == true then
      concatLists (genList (i: let e = elemAt v i; in if isDrv e then [ { name = "${name}.${toString i}"; drv = e; } ] else [ ]) (length v))
    else [ ];
  # what the builder is given (nixpkgs keeps meta and passthru out of it): drvAttrs
  inputsOf = d:
    let attrs = if ok (d.drvAttrs or null) && isAttrs (d.drvAttrs or null) then d.drvAttrs else { }; in
    concatLists (map (n: let v = tryEval attrs.${n}; in if v.success then drvsIn n v.value else [ ]) (attrNames attrs));
  clean = depth: v:
    if isFunction v then null
    else if isAttrs v then (if depth > 6 || (v.type or null) == "derivation" then null else builtins.mapAttrs (_: clean (depth + 1)) v)
    else if isList v then (if depth > 6 then null else map (clean (depth + 1)) v)
    else if builtins.isPath v then toString v
    else v;
  metaOf = d:
    let m = try (d.meta or null); in
    if isAttrs m then tryDeep (builtins.listToAttrs (concatLists (map (k: let v = tryEval (m.${k} or null); in
      if v.success && v.value != null then [ { name = k; value = clean 0 v.value; } ] else [ ]) metaKeys)))
    else null;
  stringOrNull = v: let r = try v; in if builtins.isString r then r else null;
  items = builtins.genericClosure {
    startSet = [ { key = root.drvPath; drv = root; path = attrPath; depth = 0; } ];
    operator = item:
      if item.depth >= maxDepth then [ ]
      else concatLists (map (c: let k = try c.drv.drvPath; in
        if builtins.isString k then [ { key = k; drv = c.drv; path = item.path ++ [ c.name ]; depth = item.depth + 1; } ] else [ ])
        (inputsOf item.drv));
  };
  record = item: {
    name = builtins.unsafeDiscardStringContext item.key;  # an attribute name cannot carry context
    value = {
      attrPath = builtins.concatStringsSep "." item.path;
      name = stringOrNull item.drv.name;
      pname = stringOrNull (item.drv.pname or null);
      version = stringOrNull (item.drv.version or null);
      meta = metaOf item.drv;
      depth = item.depth;
    };
  };
  outputNames = root.outputs or [ "out" ];
in
  # forced outside tryEval first, so that a missing attribute says so rather than "not a derivation"
  builtins.seq root (if !(isDrv root) then throw "sbomgen: the selected value is not a derivation"
  else {
    drvPath = root.drvPath;
    outputName = root.outputName or (builtins.head outputNames);
    outputPath = root.outPath;  # not "outPath": toJSON would turn the whole set into that string
    outputs = builtins.listToAttrs (map (o: { name = o; value = root.${o}.outPath; }) outputNames);
    inherit outputNames;  # in order: the first is the default output
    packages = builtins.listToAttrs (map record items);
  })
"""


@dataclass(frozen=True, slots=True)
class ExpressionTarget:
    """A target that is a Nix expression (``-f FILE -A ATTR``) or a flake reference."""

    file: str | None = None
    attr: str | None = None
    args: tuple[tuple[str, str, str], ...] = ()  # ("--arg" | "--argstr", NAME, VALUE)
    flake: str | None = None  # the part before '#'
    flake_attr: str = ""  # the part after '#'
    given: str | None = None  # the file as the user typed it, for messages


    def describe(self) -> str:
        if self.flake is not None:
            return f"{self.flake}#{self.flake_attr}"
        return f"{self.given or self.file}{' -A ' + self.attr if self.attr else ''}"

    def build_hint(self) -> str:
        """The command that builds it."""
        if self.flake is not None:
            return f"nix build '{self.describe()}'"
        extra = "".join(f" {kind} {name} {value!r}" for kind, name, value in self.args)
        return f"nix-build {self.describe()}{extra}"

    def __str__(self) -> str:
        return self.describe()


def looks_like_flake_ref(target: str) -> bool:
    """``PATH#ATTR`` / ``TYPE:...#ATTR`` that is not an existing file (nor an image reference,
    ``oci:``/``oci-archive:``/``docker-archive:``): a flake reference."""
    if target.startswith(("oci:", "oci-archive:", "docker-archive:")):
        return False
    try:
        return "#" in target and not os.path.lexists(target)
    except (ValueError, OSError):  # a NUL in the name
        return False


def flake_target(target: str) -> ExpressionTarget:
    ref, _, attr = target.partition("#")
    if not ref:
        raise UsageError(f"{target!r}: a flake reference needs a flake before '#' (e.g. .#{attr or 'weather'})")
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", ref) is None:  # a path: make it absolute, as nix does
        path = os.path.abspath(ref)
        if not os.path.isfile(os.path.join(path, "flake.nix")):
            raise InputNotFoundError(f"no flake.nix in {ref} (flake reference {target!r})")
        ref = path
    return ExpressionTarget(flake=ref, flake_attr=attr)


def expression_target(file: str, attr: str | None, args: list[tuple[str, str, str]]) -> ExpressionTarget:
    if not os.path.exists(file):
        raise InputNotFoundError(f"no such Nix expression: {file}")
    path = os.path.abspath(file)
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "default.nix")):
            raise InputNotFoundError(f"no default.nix in {file}")
    for _kind, name, _value in args:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_'-]*", name) or name == "__sbomgen":
            raise UsageError(f"--arg/--argstr: {name!r} is not a Nix identifier")
    return ExpressionTarget(file=path, attr=attr, args=tuple(args), given=file)


_ATTR_PART = re.compile(r'"((?:[^"\\]|\\.)*)"|([^."]+)')


def split_attr_path(text: str | None) -> list[str]:
    """``a.b."c.d".0`` -> ``["a", "b", "c.d", "0"]``, as ``nix-build -A`` reads it."""
    if not text:
        return []
    parts, position = [], 0
    while position <= len(text):
        match = _ATTR_PART.match(text, position)
        if match is None:
            raise UsageError(f"invalid attribute path {text!r}")
        parts.append(match.group(1).replace('\\"', '"') if match.group(1) is not None else match.group(2))
        position = match.end()
        if position == len(text):
            break
        if text[position] != ".":
            raise UsageError(f"invalid attribute path {text!r}")
        position += 1
    return parts


@dataclass(slots=True)
class Evaluation:
    """What one evaluation of a target gives."""

    target: ExpressionTarget
    drv_path: str
    output_name: str
    out_path: str
    outputs: dict[str, str]
    output_names: tuple[str, ...]
    #: drvPath -> {"attrPath", "name", "pname", "version", "meta", "depth"}
    packages: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0


def _last_error(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    message = (errors[-1] if errors else (lines[-1] if lines else "")).removeprefix("error: ").strip()
    # nix >= 2.4 puts the message of `throw` on the line after "error:"
    if not message and errors:
        index = lines.index(errors[-1])
        message = lines[index + 1] if index + 1 < len(lines) else ""
    return message


def evaluate(target: ExpressionTarget, depth: int = DEFAULT_DEPTH) -> Evaluation:
    """Evaluate ``target`` once: its ``.drv`` written to the store, its outputs, and the
    metadata of every derivation reachable from it (see the module documentation)."""
    import time

    env = {
        **os.environ,
        "SBOMGEN_EVAL_ATTR": json.dumps(split_attr_path(target.flake_attr if target.flake is not None else target.attr)),
        "SBOMGEN_EVAL_FILE": target.file or "",
        "SBOMGEN_EVAL_FLAKE": target.flake or "",
        "SBOMGEN_EVAL_DEPTH": str(int(depth)),
        "SBOMGEN_EVAL_META_KEYS": json.dumps(list(META_KEYS)),
    }
    if target.flake is not None:
        if target.args:
            raise UsageError("--arg/--argstr apply to -f FILE, not to a flake reference")
        args = [_tool("nix"), "--extra-experimental-features", "nix-command flakes", "eval", "--json", "--impure",
                "--expr", f"({WALKER}) {{ __sbomgen = true; }}"]  # `nix eval` does not auto-call --expr
    else:
        args = [_tool("nix-instantiate"), "--eval", "--strict", "--json", "--read-write-mode", "--expr", WALKER,
                "--arg", "__sbomgen", "true"]
        for kind, name, value in target.args:
            args += [kind, name, value]
    started = time.perf_counter()
    try:
        proc = subprocess.run(args, capture_output=True, env=env, stdin=subprocess.DEVNULL)
    except OSError as exc:
        raise NixCommandError(f"cannot run {args[0]}: {exc.strerror or exc}") from None
    seconds = time.perf_counter() - started
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        message = _last_error(stderr) or f"exit code {proc.returncode}"
        raise NixCommandError(f"evaluating {target.describe()} failed: {message}")
    if len(proc.stdout) > max(limits.current().max_json_bytes, 256 * 1024 * 1024):
        raise NixCommandError(f"evaluating {target.describe()} printed {len(proc.stdout)} bytes: more than sbomgen reads")
    try:
        data = json.loads(proc.stdout)
    except ValueError as exc:
        raise NixCommandError(f"evaluating {target.describe()} printed no JSON: {exc}") from None
    return _parse(target, data, seconds)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _parse(target: ExpressionTarget, data: Any, seconds: float) -> Evaluation:
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("drvPath", "outputPath", "outputName")):
        raise NixCommandError(f"evaluating {target.describe()} gave an unexpected result")
    raw_outputs = data.get("outputs")
    outputs = {k: v for k, v in raw_outputs.items() if isinstance(v, str)} if isinstance(raw_outputs, dict) else {}
    packages: dict[str, dict[str, Any]] = {}
    raw = data.get("packages")
    for drv_path, record in (raw.items() if isinstance(raw, dict) else ()):
        if not isinstance(drv_path, str) or not drv_path.endswith(".drv") or not isinstance(record, dict):
            continue
        meta = record.get("meta")
        packages[drv_path] = {
            "attrPath": _text(record.get("attrPath")),
            "name": _text(record.get("name")),
            "pname": _text(record.get("pname")),
            "version": _text(record.get("version")),
            "meta": meta if isinstance(meta, dict) else None,
        }
    raw_names = data.get("outputNames")
    names = tuple(n for n in raw_names if isinstance(n, str)) if isinstance(raw_names, list) else ()
    names = names or (data["outputName"],)
    return Evaluation(target, data["drvPath"], data["outputName"], data["outputPath"], outputs, names, packages, seconds)
