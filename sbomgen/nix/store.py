"""Read-only access to a Nix store: its SQLite database and its ``.drv`` files.

Nix keeps what it knows about store paths in ``$NIX_STATE_DIR/db/db.sqlite``:

* ``ValidPaths(id, path, hash, registrationTime, deriver, narSize, ultimate, sigs, ca)``
* ``Refs(referrer, reference)``: the runtime references, by ``ValidPaths.id``
* ``DerivationOutputs(drv, id, path)``: outputs of valid ``.drv`` files

The database is opened read-only (``mode=ro``), never written or locked for writing, and a
closure is read with one recursive query instead of one query per path.

The store is trusted to be the user's own, but its files are still read defensively: the DB
must be a regular file (a FIFO or a device is refused, not waited on); every row read is
checked (a path of this store, a ``sha256`` NAR hash, a non-negative size) and a bad one is
a :class:`StoreDatabaseError` naming it; every ``.drv`` is read as
:func:`~sbomgen.nix.derivation.read_derivation` with this store's directory, so a tampered
one that names ``/dev/zero`` or a FIFO is refused before anything is opened.

A database in WAL mode cannot be opened read-only by a user who may not create its ``-shm``
file (an idle nix-daemon removes ``-wal`` and ``-shm``; ``/nix/var/nix/db`` belongs to root).
When no ``-wal`` file holds uncheckpointed writes, the main file is then complete, and it is
read as immutable (``immutable=1``: no lock, no ``-shm``), with one warning on stderr.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import quote

from sbomgen.errors import DerivationError, InvalidStorePathError, StoreDatabaseError
from sbomgen.nix.derivation import Derivation, read_derivation
from sbomgen.nix.hashes import parse_hash
from sbomgen.nix.storepath import default_state_dir, is_store_path

#: SQLite's default limit on host parameters is 999 in old builds; stay well below it.
_BATCH = 900

#: seconds to wait for a writer's lock before giving up with "database is locked"
BUSY_TIMEOUT = 30.0


def _warn(message: str) -> None:
    """One ``PROG: warning: ...`` line on stderr (a warning, not an error: the work goes on)."""
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "sbomgen"
    if prog in ("__main__.py", "-c", "-m", "") or prog.endswith(".py"):
        prog = "sbomgen"
    print(f"{prog}: warning: {message}", file=sys.stderr)


#: where warnings go (tests and embedders may replace it)
warn: Callable[[str], None] = _warn


@dataclass(frozen=True, slots=True)
class PathInfo:
    """One row of ``ValidPaths`` plus its references."""

    path: str
    nar_hash: str
    """``sha256:<hex or base32>`` as Nix stores it; see :attr:`nar_sha256_hex`."""
    nar_size: int | None
    deriver: str | None
    registration_time: int
    ca: str | None
    references: tuple[str, ...]

    @property
    def nar_sha256_hex(self) -> str:
        """The SHA-256 of the path's NAR serialisation, as lowercase hex.

        Raises :class:`StoreDatabaseError` when the DB holds something else (Nix always
        writes ``sha256:``)."""
        try:
            parsed = parse_hash(self.nar_hash)
        except ValueError as exc:
            raise StoreDatabaseError(f"the store database has a bad NAR hash for {self.path}: {exc}") from None
        if parsed.algo != "sha256":
            raise StoreDatabaseError(
                f"the store database has a {parsed.algo} NAR hash for {self.path}: Nix records sha256"
            )
        return parsed.hex


class NixStore:
    """A Nix store read straight from disk: no ``nix`` binary, no daemon, read-only."""

    def __init__(self, store_dir: str, state_dir: str | None = None, db_path: str | None = None):
        self.store_dir = store_dir.rstrip("/")
        self.state_dir = state_dir or default_state_dir(self.store_dir)
        self.db_path = db_path or os.path.join(self.state_dir, "db", "db.sqlite")
        self._conn: sqlite3.Connection | None = None
        self._drv_cache: dict[str, Derivation] = {}

    # -- database ---------------------------------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        try:
            info = os.stat(self.db_path)
        except FileNotFoundError:
            raise StoreDatabaseError(
                f"Nix store database not found: {self.db_path} "
                f"(for store {self.store_dir}; set NIX_STATE_DIR or --db)"
            ) from None
        except OSError as exc:
            raise StoreDatabaseError(f"cannot read Nix store database {self.db_path}: {exc.strerror or exc}") from None
        if not stat.S_ISREG(info.st_mode):
            raise StoreDatabaseError(f"Nix store database {self.db_path} is not a regular file")
        if not os.access(self.db_path, os.R_OK):
            raise StoreDatabaseError(f"Nix store database is not readable: {self.db_path}")
        uri = "file:" + quote(os.path.abspath(self.db_path))
        try:
            conn = self._connect(f"{uri}?mode=ro")
        except sqlite3.OperationalError as exc:
            if not self._immutable_is_safe(exc):
                raise self._error(exc) from None
            try:
                conn = self._connect(f"{uri}?mode=ro&immutable=1")
            except sqlite3.Error as second:
                raise self._error(second) from None
            warn(
                f"{self.db_path} is in WAL mode and its directory is not writable: "
                "read it as immutable (no -wal file, so nothing is missed; a build running meanwhile is not seen)"
            )
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        return conn

    def _connect(self, uri: str) -> sqlite3.Connection:
        """Connect read-only and check the tables are Nix's; raises :class:`sqlite3.Error`."""
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT)
        try:
            conn.execute("PRAGMA query_only = ON")
            conn.execute("PRAGMA trusted_schema = OFF")  # no SQL functions run from the DB's own schema
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except BaseException:
            conn.close()
            raise
        missing = {"ValidPaths", "Refs", "DerivationOutputs"} - tables
        if missing:
            conn.close()
            raise StoreDatabaseError(
                f"{self.db_path} is not a Nix store database (missing tables: {', '.join(sorted(missing))})"
            )
        return conn

    def _immutable_is_safe(self, exc: sqlite3.OperationalError) -> bool:
        """Whether ``exc`` is the read-only WAL case, and an immutable read sees everything.

        That is: opening failed for want of a writable ``-shm`` (SQLITE_READONLY_CANTINIT or
        "unable to open"), the file is in WAL mode (byte 18 of the header is 2), and no
        ``-wal`` file holds writes the main file lacks.
        """
        message = str(exc)
        if "readonly" not in message and "unable to open" not in message:
            return False
        try:
            with open(self.db_path, "rb") as handle:
                header = handle.read(100)
        except OSError:
            return False
        if len(header) < 20 or not header.startswith(b"SQLite format 3\0") or header[18] != 2:
            return False
        try:
            return os.stat(self.db_path + "-wal").st_size == 0
        except FileNotFoundError:
            return True
        except OSError:
            return False

    def _error(self, exc: sqlite3.Error) -> StoreDatabaseError:
        message = str(exc)
        hint = ""
        if "readonly" in message or "unable to open" in message:
            hint = (
                f" (if it is in WAL mode, sbomgen needs {os.path.dirname(self.db_path) or '.'} to be writable, "
                "or no -wal file: run as the store's owner, or stop the Nix daemon's writers)"
            )
        elif "locked" in message or "busy" in message:
            hint = " (a Nix process holds a write lock: try again when it is done)"
        return StoreDatabaseError(f"cannot read Nix store database {self.db_path}: {message}{hint}")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> NixStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _query(self, sql: str, params: Iterable[object] = ()) -> list[tuple]:
        try:
            return self.conn.execute(sql, tuple(params)).fetchall()
        except (sqlite3.Error, OverflowError, ValueError) as exc:  # ValueError: a NUL in a path
            raise self._error(exc) from None  # type: ignore[arg-type]

    # -- path info --------------------------------------------------------------------------

    def is_valid(self, path: str) -> bool:
        return bool(self._query("SELECT 1 FROM ValidPaths WHERE path = ?", (path,)))

    def require_valid(self, path: str) -> None:
        if not self.is_valid(path):
            raise InvalidStorePathError(
                f"{path} is not a valid path in the Nix store database {self.db_path} "
                "(not built, garbage-collected, or from another store)"
            )

    def path_infos(self, paths: Iterable[str], references: bool = True) -> dict[str, PathInfo]:
        """Info for those of ``paths`` that are valid; invalid ones are simply absent.

        With ``references=False`` the ``references`` of each are left empty, unread (a third of
        the cost for the 40,000 ``.drv`` of a system closure)."""
        wanted = [p for p in dict.fromkeys(paths) if isinstance(p, str)]
        rows: list[tuple] = []
        for start in range(0, len(wanted), _BATCH):
            chunk = wanted[start : start + _BATCH]
            marks = ",".join("?" * len(chunk))
            rows += self._query(
                "SELECT id, path, hash, registrationTime, deriver, narSize, ca "
                f"FROM ValidPaths WHERE path IN ({marks})",
                chunk,
            )
        return self._with_references(rows) if references else self._infos(rows, {})

    def closure(self, roots: Iterable[str]) -> dict[str, PathInfo]:
        """The runtime closure of ``roots`` (as ``nix-store -qR``), read with one recursive query."""
        roots = list(dict.fromkeys(roots))
        for root in roots:
            self.require_valid(root)
        marks = ",".join("?" * len(roots))
        rows = self._query(
            "WITH RECURSIVE closure(id) AS ("
            f"  SELECT id FROM ValidPaths WHERE path IN ({marks})"
            "  UNION SELECT r.reference FROM Refs r JOIN closure c ON r.referrer = c.id"
            ") SELECT v.id, v.path, v.hash, v.registrationTime, v.deriver, v.narSize, v.ca "
            "FROM ValidPaths v JOIN closure c ON v.id = c.id",
            roots,
        )
        return self._with_references(rows)

    def _with_references(self, rows: list[tuple]) -> dict[str, PathInfo]:
        by_id = {row[0]: row for row in rows}
        refs: dict[int, list[str]] = {row_id: [] for row_id in by_id}
        ids = list(by_id)
        for start in range(0, len(ids), _BATCH):
            chunk = ids[start : start + _BATCH]
            marks = ",".join("?" * len(chunk))
            for referrer, ref_path in self._query(
                "SELECT r.referrer, v.path FROM Refs r JOIN ValidPaths v ON v.id = r.reference "
                f"WHERE r.referrer IN ({marks})",
                chunk,
            ):
                if not is_store_path(ref_path, self.store_dir):
                    raise self._bad_row("reference", by_id.get(referrer, (None, referrer))[1], ref_path)
                if referrer in refs:
                    refs[referrer].append(ref_path)
        return self._infos(rows, refs)

    def _bad_row(self, what: str, path: object, value: object) -> StoreDatabaseError:
        return StoreDatabaseError(f"corrupt Nix store database {self.db_path}: {what} {value!r} for {path!r}")

    def _infos(self, rows: list[tuple], refs: dict[int, list[str]]) -> dict[str, PathInfo]:
        infos: dict[str, PathInfo] = {}
        store_dir = self.store_dir
        for row_id, path, nar_hash, reg_time, deriver, nar_size, ca in rows:
            if not is_store_path(path, store_dir):
                raise self._bad_row("ValidPaths.path", path, path)
            if not isinstance(nar_hash, str):
                raise self._bad_row("hash", path, nar_hash)
            if not isinstance(reg_time, int):
                raise self._bad_row("registrationTime", path, reg_time)
            if nar_size is not None and (not isinstance(nar_size, int) or nar_size < 0):
                raise self._bad_row("narSize", path, nar_size)
            if deriver and not (is_store_path(deriver, store_dir) and deriver.endswith(".drv")):
                raise self._bad_row("deriver", path, deriver)
            if ca is not None and not isinstance(ca, str):
                raise self._bad_row("ca", path, ca)
            infos[path] = PathInfo(
                path=path,
                nar_hash=nar_hash,
                nar_size=nar_size,
                deriver=deriver or None,
                registration_time=reg_time,
                ca=ca or None,
                references=tuple(sorted(refs[row_id])) if row_id in refs else (),
            )
        return infos

    def derivation_outputs(self, drv_path: str) -> dict[str, str]:
        """Output name -> path as registered for a valid ``.drv`` (covers CA derivations)."""
        outputs = {}
        for name, path in self._query(
            "SELECT o.id, o.path FROM DerivationOutputs o JOIN ValidPaths v ON v.id = o.drv WHERE v.path = ?",
            (drv_path,),
        ):
            if not isinstance(name, str) or not is_store_path(path, self.store_dir):
                raise self._bad_row("DerivationOutputs output", drv_path, (name, path))
            outputs[name] = path
        return outputs

    # -- derivations ------------------------------------------------------------------------

    def derivation(self, drv_path: str) -> Derivation:
        """Parse (once) and return the derivation at ``drv_path``."""
        drv = self._drv_cache.get(drv_path)
        if drv is None:
            drv = read_derivation(drv_path, self.store_dir)
            self._drv_cache[drv_path] = drv
        return drv

    def has_file(self, path: str) -> bool:
        return os.path.lexists(path)

    def derivation_closure(self, root_drv: str) -> Iterator[Derivation]:
        """Every derivation reachable through ``inputDrvs`` from ``root_drv``, root first.

        Only the root is kept in the cache: the caller holds what it needs of the rest (the
        40,000 parsed derivations of a system closure are 100 MB it would otherwise keep)."""
        seen = {root_drv}
        stack: list[tuple[str, str | None]] = [(root_drv, None)]
        cache = self._drv_cache
        while stack:
            path, parent = stack.pop()
            if path == root_drv:
                drv = self.derivation(path)
            else:
                try:
                    drv = cache.get(path) or read_derivation(path, self.store_dir)
                except DerivationError as exc:  # say which derivation named it
                    raise DerivationError(f"{exc} (an input of {parent})") from None
            yield drv
            for dep in drv.input_drvs:
                if dep not in seen:
                    seen.add(dep)
                    stack.append((dep, path))
