"""The provenance service: make an SLSA v1 statement for a build, sign it, verify one.

Making: resolve the target, walk its build-time graph (direct inputs, or the whole closure
with ``recursive``), and describe it with :mod:`sbomgen.formats.provenance`.

Verifying: check the DSSE signature (when a key is given), the statement's shape (against
the schemas in ``schemas/``), that every subject still hashes to its digest, and that every
resolved dependency present in the store does too; every problem is reported by name and path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import posixpath
import re
import stat
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

from sbomgen.bulk import bulk
from sbomgen.errors import (
    DependencyMismatchError,
    DependencyMissingError,
    DocumentInvalidError,
    InvalidStorePathError,
    MalformedAttestationError,
    NarError,
    SignatureError,
    SubjectMismatchError,
    UsageError,
    first_of,
)
from sbomgen.formats import dsse
from sbomgen.formats.provenance import DRV_SHA256, FILE_SHA256, NAR_SHA256, NIX_NAR_SHA256, PREDICATE_TYPE, RunInfo, Subject, build_statement
from sbomgen.graph.closure import buildtime_graph
from sbomgen.graph.model import DependencyGraph
from sbomgen.keys import SigningKey, VerifyKey
from sbomgen.nix.derivation import printable
from sbomgen.nix.nar import nar_sha256_hex
from sbomgen.nix.store import NixStore
from sbomgen.nix.storepath import configured_store_dir, is_store_name, resolve_input
from sbomgen.schemas import schema_errors
from sbomgen.text import one_line

_CHUNK = 1 << 20


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _subject(store: NixStore, path: str) -> Subject:
    info = store.path_infos([path]).get(path)
    if info is None:
        store.require_valid(path)
    is_file = stat.S_ISREG(os.lstat(path).st_mode)
    return Subject(path, info.nar_sha256_hex, file_sha256(path) if is_file else None)


@dataclass(slots=True)
class Provenance:
    statement: dict
    graph: DependencyGraph
    subjects: list[Subject]


@bulk
def make_statement(
    target: str,
    *,
    recursive: bool = False,
    depth: int | None = None,
    db_path: str | None = None,
    run: RunInfo | None = None,
) -> Provenance:
    """The statement for ``target`` (``./result``, an output path, or a ``.drv``: all its built
    outputs; an expression or flake reference: the outputs of the derivation it evaluates to)."""
    from sbomgen.nix.evaluate import ExpressionTarget
    from sbomgen.sbom import as_target, resolve_store_target

    target = as_target(target)
    hint, expression, attributes = "sbomgen build", None, ()
    if isinstance(target, ExpressionTarget):
        found = resolve_store_target(target, buildtime=True, db_path=db_path)
        store, store_path, hint = found.store, found.evaluation.drv_path, target.build_hint()
        expression = target.given or target.file or target.describe()
        attributes = (target.attr,) if target.attr else ()
    else:
        resolved = resolve_input(target)
        store = NixStore(resolved.store_dir, db_path=db_path)
        store.require_valid(resolved.store_path)
        store_path = resolved.store_path
    if store_path.endswith(".drv"):
        drv = store.derivation(store_path)
        outputs = {name: o.path for name, o in drv.outputs.items()} | store.derivation_outputs(store_path)
        built = [outputs[name] for name in drv.output_names if outputs.get(name) and store.is_valid(outputs[name])]
        if not built:
            raise InvalidStorePathError(f"no output of {store_path} is built: build it first ({hint})")
        root = outputs[drv.output_names[0]] if outputs[drv.output_names[0]] in built else built[0]
        subject_paths = built
    else:
        root = store_path
        subject_paths = [root]
    limit = depth if depth is not None else (None if recursive else 1)
    graph = buildtime_graph(store, root, limit)
    subjects = [_subject(store, path) for path in subject_paths]
    root_drv = store.derivation(graph.root_component.drv_path) if graph.root_component.drv_path else None
    if run is None:
        times = [i.registration_time for i in store.path_infos(subject_paths).values()]
        run = RunInfo(finished=datetime.fromtimestamp(max(times), tz=UTC), time_source="store-registration",
                      expression=expression, attributes=attributes)
    if root_drv is not None:
        # a .drv may hold bytes that are not UTF-8 (kept as surrogates): JSON cannot
        run = dataclasses.replace(run, builder=printable(root_drv.builder), args=tuple(map(printable, root_drv.args)))
    statement = build_statement(graph, subjects, run)
    errors = schema_errors("slsa-provenance-v1", statement)
    if errors:  # a bug in sbomgen, never written
        raise DocumentInvalidError(f"generated statement fails its schema: {first_of(errors)}")
    return Provenance(statement, graph, subjects)


def observed_run(started: datetime, finished: datetime, nix_version: str | None, expression: str, attributes: list[str]) -> RunInfo:
    return RunInfo(
        started=started,
        finished=finished,
        time_source="observed-build",
        invocation_id=str(uuid.uuid4()),
        nix_version=nix_version,
        expression=expression,
        attributes=tuple(attributes),
    )


def sign_statement(statement: dict, key: SigningKey) -> dict:
    payload = json.dumps(statement, separators=(",", ":"), sort_keys=True).encode()
    return dsse.sign(payload, key)


# -- verification ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    error: type  # the SbomgenError subclass whose exit code this problem maps to
    kind: str  # "signature" | "subject" | "dependency"
    name: str
    path: str
    message: str

    def line(self) -> str:
        name, path = one_line(self.name), one_line(self.path)
        where = f"{name} ({path})" if path else name
        return f"{self.kind} {where}: {one_line(self.message, 400)}"


@dataclass(slots=True)
class Checked:
    """What was done with one subject or dependency of the statement."""

    kind: str  # "subject" | "dependency"
    name: str
    path: str  # the store path it names ("" when it names none)
    status: str = "not checkable"  # "verified" | "mismatch" | "missing" | "not checkable"
    algorithms: list[str] = field(default_factory=list)  # the digests that were recomputed
    reason: str = ""  # why it could not be checked

    def as_json(self) -> dict:
        entry = {"kind": self.kind, "name": self.name, "path": self.path, "status": self.status, "rehashed": self.algorithms}
        if self.reason:
            entry["reason"] = self.reason
        return entry


@dataclass(slots=True)
class VerifyReport:
    source: str
    signed: bool = False
    keyid: str | None = None
    subjects: int = 0
    dependencies: int = 0
    checked: int = 0
    skipped: int = 0
    problems: list[Problem] = field(default_factory=list)
    entries: list[Checked] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """The most severe problem's code: signature, subject, dependency mismatch, missing."""
        order = [SignatureError, SubjectMismatchError, DependencyMismatchError, DependencyMissingError]
        for error in order:
            if any(p.error is error for p in self.problems):
                return error.exit_code
        return 0

    def rehashed(self, kind: str) -> int:
        return sum(1 for e in self.entries if e.kind == kind and e.algorithms)

    def as_json(self) -> dict:
        return {
            "source": self.source,
            "verified": not self.problems,
            "signed": self.signed,
            "keyid": self.keyid,
            "subjects": self.subjects,
            "dependencies": self.dependencies,
            "checked": self.checked,
            "skipped": self.skipped,
            "rehashed": {"subjects": self.rehashed("subject"), "dependencies": self.rehashed("dependency")},
            "problems": [
                {"kind": p.kind, "name": p.name, "path": p.path, "message": p.message, "exit_code": p.error.exit_code}
                for p in self.problems
            ],
            "entries": [e.as_json() for e in self.entries],
        }


# -- reading statements and envelopes (untrusted) -------------------------------------------------

_HEX64 = re.compile(r"[0-9a-f]{64}")


def statement_from(data: object, source: str) -> dict:
    """``data`` as an SLSA provenance v1 statement, checked against the schemas and for the
    digests sbomgen reads; :class:`MalformedAttestationError` names the first problem."""
    if not isinstance(data, dict):
        raise MalformedAttestationError(f"{source}: not an SLSA provenance v1 statement ({dsse.shown(data)}, not an object)")
    if data.get("predicateType") != PREDICATE_TYPE:
        raise MalformedAttestationError(f"{source}: not an SLSA provenance v1 statement (predicateType {dsse.shown(data.get('predicateType'))})")
    errors = schema_errors("slsa-provenance-v1", data)
    if errors:
        raise MalformedAttestationError(f"{source}: invalid statement: {dsse.shown(first_of(errors), 300)}")
    for kind, index, descriptor in _descriptors(data):
        for algorithm in (FILE_SHA256, DRV_SHA256, NIX_NAR_SHA256):
            value = descriptor.get("digest", {}).get(algorithm)
            if value is not None and not _HEX64.fullmatch(value):
                raise MalformedAttestationError(f"{source}: {kind} {index} ({dsse.shown(descriptor.get('name', ''))}): {algorithm} is not 64 hex digits")
    return data


def _descriptors(statement: dict) -> list[tuple[str, int, dict]]:
    dependencies = statement["predicate"]["buildDefinition"].get("resolvedDependencies", [])
    return [("subject", i, s) for i, s in enumerate(statement["subject"])] + [("dependency", i, d) for i, d in enumerate(dependencies)]


def read_attestation(path: str) -> tuple[dsse.Envelope | None, object]:
    """The envelope (decoded, not yet verified: its payload is parsed only once it is) and
    None, or None and the JSON of a bare statement."""
    data = dsse.read_json(path, "attestation")
    if dsse.is_envelope(data):
        return dsse.decode_envelope(data, path), None
    return None, data


def trusted_statement(path: str, keys: list[VerifyKey], require_signature: bool | None = None) -> tuple[dict, str]:
    """The statement in ``path`` as far as it can be trusted, and a note on its signature.

    A DSSE envelope is trusted only when one of ``keys`` verifies a signature; without keys
    it is refused (:class:`UsageError`) unless ``require_signature`` is False. A bare
    statement is refused (:class:`SignatureError`) when signatures are required: when
    ``require_signature`` is True, or is None and keys were given. Malformed input raises
    :class:`MalformedAttestationError`."""
    envelope, data = read_attestation(path)
    required = require_signature if require_signature is not None else bool(keys)
    if envelope is None:
        if required:
            raise SignatureError(f"{path} is not signed (a bare statement, not a DSSE envelope), and a signature is required")
        note = "unsigned statement accepted (no key given)" if not keys else "unsigned statement accepted (require_signature = false)"
    elif keys:
        key = envelope.verifying_key(keys)
        if key is None:
            raise SignatureError(f"{path}: no signature verifies with the key(s) given ({', '.join(k.keyid[:16] + '…' for k in keys)})")
        note = f"signature verified with key {key.keyid[:16]}…"
    elif require_signature is False:
        note = "signature NOT verified: no key given and require_signature = false"
    else:
        raise UsageError(f"{path} is a signed DSSE envelope: pass --key (or set key in [provenance]) with the public key to verify it")
    if envelope is not None:
        return statement_from(envelope.statement(path), f"{path}: the envelope's payload"), note
    return statement_from(data, path), note


def load_attestation(path: str, key: VerifyKey | None) -> tuple[dict, VerifyReport]:
    """Read a statement or DSSE envelope; checks the signature when ``key`` is given."""
    report = VerifyReport(path)
    envelope, data = read_attestation(path)
    if envelope is not None:
        report.signed = True
        if key is None:
            raise UsageError(f"{path} is a signed DSSE envelope: pass --key with the public key to verify it")
        report.keyid = key.keyid
        if not envelope.verified_by(key):
            report.problems.append(
                Problem(SignatureError, "signature", "envelope", "", f"no signature verifies with key {key.keyid[:16]}…")
            )
            return {}, report
        return statement_from(envelope.statement(path), f"{path}: the envelope's payload"), report
    if key is not None:
        report.problems.append(Problem(SignatureError, "signature", "statement", "", "the statement is not signed (no DSSE envelope)"))
        return {}, report
    return statement_from(data, path), report


# -- confinement: only the store is hashed ---------------------------------------------------------


def _file_uri_path(value: str) -> str | None:
    """The path of a ``file:`` URI (RFC 8089: ``file:///p``, ``file://localhost/p``, ``file:/p``), else None."""
    if not value.startswith("file:"):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return ""
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment or "?" in value or "#" in value:
        return ""
    return unquote(parts.path, errors="strict")


def store_location(value: object, store_dir: str, what: str) -> str:
    """``value`` (a statement's ``uri`` or ``nixDrvPath``) as a path in the store ``store_dir``.

    Accepted: an absolute, normalised path of a store path or of something inside one, or the
    ``file:`` URI of one, that does not resolve out of the store through a symlink and is a
    regular file, directory or symlink (what NAR can hold). Anything else is refused with
    :class:`MalformedAttestationError` naming ``what`` before the file system is touched."""

    def refuse(why: str) -> MalformedAttestationError:
        return MalformedAttestationError(f"{what}: {dsse.shown(value)} {why}")

    if not isinstance(value, str):
        raise refuse("is not a string")
    try:
        path = _file_uri_path(value)
    except UnicodeDecodeError:
        raise refuse("is not a UTF-8 file: URI") from None
    if path is None:
        path = value
    if not path.startswith("/"):
        raise refuse(f"is not a store path (an absolute path in {store_dir}, or its file: URI)")
    if "\0" in path or posixpath.normpath(path) != path or path.startswith("//"):
        raise refuse("is not a normalised absolute path")
    relative = path[len(store_dir) + 1 :] if path.startswith(store_dir + "/") else None
    if not relative or not is_store_name(relative.split("/", 1)[0]):
        raise refuse(f"is not in the Nix store {store_dir} (set NIX_STORE_DIR for another store)")
    real_store = os.path.realpath(store_dir)
    real = os.path.realpath(path)
    if real != real_store and not real.startswith(real_store.rstrip("/") + "/"):
        raise refuse(f"resolves to {dsse.shown(real)}, outside the Nix store {store_dir}")
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return path  # reported as missing
    except OSError as exc:
        raise refuse(f"cannot be read: {exc.strerror or exc}") from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
        raise refuse("is not a regular file, directory or symlink (nothing a store path holds)")
    return path


@dataclass(slots=True)
class _Target:
    entry: Checked
    digest: dict
    drv: str | None


def _targets(statement: dict, report: VerifyReport) -> list[_Target]:
    """Every subject and dependency with the store paths it names, all validated before any is read."""
    store_dir = configured_store_dir()
    targets = []
    for kind, index, descriptor in _descriptors(statement):
        uri = descriptor.get("uri")
        label = descriptor.get("name") or (uri if isinstance(uri, str) else "")
        what = f"{report.source}: {kind} {index} ({dsse.shown(label)})"
        path = store_location(uri, store_dir, f"{what}: uri") if uri is not None else ""
        name = descriptor.get("name") or os.path.basename(path)
        drv_value = descriptor.get("annotations", {}).get("nixDrvPath")
        drv = store_location(drv_value, store_dir, f"{what}: annotation nixDrvPath") if drv_value is not None else None
        targets.append(_Target(Checked(kind, name, path), descriptor.get("digest", {}), drv))
    return targets


def _safe_file_sha256(path: str) -> str:
    """SHA-256 of a regular file's bytes; never follows a symlink or waits on a fifo."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise NarError(f"cannot read {path}: {exc.strerror or exc}") from None
    digest = hashlib.sha256()
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NarError(f"cannot read {path}: not a regular file")
        while chunk := os.read(fd, _CHUNK):
            digest.update(chunk)
    except OSError as exc:
        raise NarError(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    return digest.hexdigest()


def _check(target: _Target, report: VerifyReport, cache: dict[tuple[str, str], str]) -> None:
    entry, digest = target.entry, target.digest
    kind, name, path = entry.kind, entry.name, entry.path
    mismatch = SubjectMismatchError if kind == "subject" else DependencyMismatchError
    missing = SubjectMismatchError if kind == "subject" else DependencyMissingError
    if not path:
        entry.reason = "names no store path (no uri)"
        if kind == "subject":
            report.problems.append(Problem(SubjectMismatchError, kind, name, "", "names no store path: nothing to re-hash"))
        else:
            report.skipped += 1
        return
    if not os.path.lexists(path):
        entry.status = "missing"
        report.problems.append(Problem(missing, kind, name, path, "not in the store"))
        return
    checks: list[tuple[str, str, str, Callable[[str], str]]] = []
    # With nixNarSha256 the statement is sbomgen's current form for a regular file: sha256
    # is of the file's bytes (what every standard verifier computes), nixNarSha256 of its
    # NAR. Without it, sha256 is the NAR hash (directories, and statements written before).
    file_keys = [key for key in (FILE_SHA256,) if key in digest]
    if NIX_NAR_SHA256 in digest:
        checks.append((NIX_NAR_SHA256, digest[NIX_NAR_SHA256], path, nar_sha256_hex))
        if NAR_SHA256 in digest:
            file_keys.insert(0, NAR_SHA256)
    elif NAR_SHA256 in digest:
        checks.append((NAR_SHA256, digest[NAR_SHA256], path, nar_sha256_hex))
    if file_keys:
        if stat.S_ISREG(os.lstat(path).st_mode):
            checks.extend((key, digest[key], path, _safe_file_sha256) for key in file_keys)
        else:
            entry.status = "mismatch"
            report.problems.append(Problem(mismatch, kind, name, path, f"{file_keys[0]} of a file's bytes recorded, but the path is not a regular file"))
            return
    drv = target.drv
    if DRV_SHA256 in digest and drv and os.path.lexists(drv):
        checks.append((DRV_SHA256, digest[DRV_SHA256], drv, nar_sha256_hex))
    if not checks:
        entry.reason = f"no digest sbomgen can recompute ({', '.join(sorted(digest)) or 'none'}; it checks {NAR_SHA256}, {FILE_SHA256}, {DRV_SHA256})"
        if kind == "subject":
            report.problems.append(Problem(SubjectMismatchError, kind, name, path, "no digest sbomgen can re-hash (sha256 or fileSha256): not verified"))
        else:
            report.skipped += 1
        return
    report.checked += 1
    entry.status = "verified"
    for algo, expected, where, compute in checks:
        # each path is hashed once however many entries name it: a statement listing one
        # large store path a million times costs one hash, not a million
        key = (compute.__name__, where)
        if key not in cache:
            cache[key] = compute(where)
        actual = cache[key]
        entry.algorithms.append(algo)
        if actual != expected:
            entry.status = "mismatch"
            report.problems.append(Problem(mismatch, kind, name, path, f"{algo} is {actual}, the statement says {expected}"))


def verify_statement(statement: dict, report: VerifyReport, progress: Callable[[int, int], None] | None = None) -> VerifyReport:
    """Re-hash every subject and every resolved dependency that is in the store.

    Every path the statement names is checked to be in the store first
    (:func:`store_location`); a statement is verified only when every subject was re-hashed."""
    targets = _targets(statement, report)
    report.subjects = sum(1 for t in targets if t.entry.kind == "subject")
    report.dependencies = len(targets) - report.subjects
    report.entries = [t.entry for t in targets]
    cache: dict[tuple[str, str], str] = {}
    for index, target in enumerate(targets):
        _check(target, report, cache)
        if progress:
            progress(index + 1, len(targets))
    return report
