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
import stat
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sbomgen.bulk import bulk
from sbomgen.errors import (
    DependencyMismatchError,
    DependencyMissingError,
    DocumentInvalidError,
    InvalidStorePathError,
    MalformedAttestationError,
    SignatureError,
    SubjectMismatchError,
    UsageError,
    first_of,
)
from sbomgen.formats import dsse
from sbomgen.formats.provenance import DRV_SHA256, FILE_SHA256, NAR_SHA256, PREDICATE_TYPE, RunInfo, Subject, build_statement
from sbomgen.graph.closure import buildtime_graph
from sbomgen.graph.model import DependencyGraph
from sbomgen.fsutil import load_json
from sbomgen.keys import SigningKey, VerifyKey
from sbomgen.nix.derivation import printable
from sbomgen.nix.nar import nar_sha256_hex
from sbomgen.nix.store import NixStore
from sbomgen.nix.storepath import resolve_input
from sbomgen.schemas import schema_errors

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
    """The statement for ``target`` (``./result``, an output path, or a ``.drv``: all its built outputs)."""
    resolved = resolve_input(target)
    store = NixStore(resolved.store_dir, db_path=db_path)
    store.require_valid(resolved.store_path)
    if resolved.is_derivation:
        drv = store.derivation(resolved.store_path)
        outputs = {name: o.path for name, o in drv.outputs.items()} | store.derivation_outputs(resolved.store_path)
        built = [outputs[name] for name in drv.output_names if outputs.get(name) and store.is_valid(outputs[name])]
        if not built:
            raise InvalidStorePathError(f"no output of {resolved.store_path} is built: build it first (sbomgen build)")
        root = outputs[drv.output_names[0]] if outputs[drv.output_names[0]] in built else built[0]
        subject_paths = built
    else:
        root = resolved.store_path
        subject_paths = [root]
    limit = depth if depth is not None else (None if recursive else 1)
    graph = buildtime_graph(store, root, limit)
    subjects = [_subject(store, path) for path in subject_paths]
    root_drv = store.derivation(graph.root_component.drv_path) if graph.root_component.drv_path else None
    if run is None:
        times = [i.registration_time for i in store.path_infos(subject_paths).values()]
        run = RunInfo(finished=datetime.fromtimestamp(max(times), tz=timezone.utc), time_source="store-registration")
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
        where = f"{self.name} ({self.path})" if self.path else self.name
        return f"{self.kind} {where}: {self.message}"


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

    @property
    def exit_code(self) -> int:
        """The most severe problem's code: signature, subject, dependency mismatch, missing."""
        order = [SignatureError, SubjectMismatchError, DependencyMismatchError, DependencyMissingError]
        for error in order:
            if any(p.error is error for p in self.problems):
                return error.exit_code
        return 0

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
            "problems": [
                {"kind": p.kind, "name": p.name, "path": p.path, "message": p.message, "exit_code": p.error.exit_code}
                for p in self.problems
            ],
        }


def load_attestation(path: str, key: VerifyKey | None) -> tuple[dict, VerifyReport]:
    """Read a statement or DSSE envelope; checks the signature when ``key`` is given."""
    report = VerifyReport(path)
    data = load_json(path, MalformedAttestationError)
    if dsse.is_envelope(data):
        envelope = dsse.parse_envelope(data, path)
        report.signed = True
        if key is None:
            raise UsageError(f"{path} is a signed DSSE envelope: pass --key with the public key to verify it")
        report.keyid = key.keyid
        if not envelope.verified_by(key):
            report.problems.append(
                Problem(SignatureError, "signature", "envelope", "", f"no signature verifies with key {key.keyid[:16]}…")
            )
            return {}, report
        if envelope.payload_type != dsse.PAYLOAD_TYPE:
            raise MalformedAttestationError(f"{path}: payloadType is {envelope.payload_type!r}, expected {dsse.PAYLOAD_TYPE!r}")
        try:
            data = json.loads(envelope.payload)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MalformedAttestationError(f"{path}: the envelope's payload is not JSON: {exc}") from None
    elif key is not None:
        report.problems.append(Problem(SignatureError, "signature", "statement", "", "the statement is not signed (no DSSE envelope)"))
        return {}, report
    if not isinstance(data, dict) or data.get("predicateType") != PREDICATE_TYPE:
        found = data.get("predicateType") if isinstance(data, dict) else type(data).__name__
        raise MalformedAttestationError(f"{path}: not an SLSA provenance v1 statement (predicateType {found!r})")
    errors = schema_errors("slsa-provenance-v1", data)
    if errors:
        raise MalformedAttestationError(f"{path}: invalid statement: {first_of(errors)}")
    return data, report


def _check(path: str, digest: dict, kind: str, name: str, report: VerifyReport, annotations: dict) -> None:
    mismatch = SubjectMismatchError if kind == "subject" else DependencyMismatchError
    missing = SubjectMismatchError if kind == "subject" else DependencyMissingError
    if not os.path.lexists(path):
        report.problems.append(Problem(missing, kind, name, path, "not in the store"))
        return
    checks: list[tuple[str, str, Callable[[], str]]] = []
    if NAR_SHA256 in digest:
        checks.append((NAR_SHA256, digest[NAR_SHA256], lambda: nar_sha256_hex(path)))
    if FILE_SHA256 in digest:
        if stat.S_ISREG(os.lstat(path).st_mode):
            checks.append((FILE_SHA256, digest[FILE_SHA256], lambda: file_sha256(path)))
        else:
            report.problems.append(Problem(mismatch, kind, name, path, f"{FILE_SHA256} recorded, but the path is not a regular file"))
            return
    drv = annotations.get("nixDrvPath")
    if DRV_SHA256 in digest and isinstance(drv, str) and os.path.exists(drv):
        checks.append((DRV_SHA256, digest[DRV_SHA256], lambda: nar_sha256_hex(drv)))
    if not checks:
        report.skipped += 1
        return
    report.checked += 1
    for algo, expected, compute in checks:
        actual = compute()
        if actual != expected:
            report.problems.append(Problem(mismatch, kind, name, path, f"{algo} is {actual}, the statement says {expected}"))


def verify_statement(statement: dict, report: VerifyReport, progress: Callable[[int, int], None] | None = None) -> VerifyReport:
    """Re-hash every subject and every resolved dependency that is in the store."""
    subjects = statement["subject"]
    dependencies = statement["predicate"]["buildDefinition"].get("resolvedDependencies", [])
    report.subjects, report.dependencies = len(subjects), len(dependencies)
    items = [("subject", s) for s in subjects] + [("dependency", d) for d in dependencies]
    for index, (kind, descriptor) in enumerate(items):
        path = descriptor.get("uri", "")
        name = descriptor.get("name") or os.path.basename(path)
        if not path.startswith("/"):
            report.skipped += 1
            continue
        _check(path, descriptor.get("digest", {}), kind, name, report, descriptor.get("annotations", {}))
        if progress:
            progress(index + 1, len(items))
    return report
