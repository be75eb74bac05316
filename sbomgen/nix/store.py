"""Read-only access to a Nix store: its SQLite database and its ``.drv`` files.

Nix keeps what it knows about store paths in ``$NIX_STATE_DIR/db/db.sqlite``:

* ``ValidPaths(id, path, hash, registrationTime, deriver, narSize, ultimate, sigs, ca)``
* ``Refs(referrer, reference)``: the runtime references, by ``ValidPaths.id``
* ``DerivationOutputs(drv, id, path)``: outputs of valid ``.drv`` files

The database is opened read-only (``mode=ro``), never written or locked for writing, and a
closure is read with one recursive query instead of one query per path.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sbomgen.errors import InvalidStorePathError, StoreDatabaseError
from sbomgen.nix.derivation import Derivation, read_derivation
from sbomgen.nix.hashes import parse_hash
from sbomgen.nix.storepath import default_state_dir

#: SQLite's default limit on host parameters is 999 in old builds; stay well below it.
_BATCH = 900


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
        """The SHA-256 of the path's NAR serialisation, as lowercase hex."""
        return parse_hash(self.nar_hash).hex


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
        if not os.path.exists(self.db_path):
            raise StoreDatabaseError(
                f"Nix store database not found: {self.db_path} "
                f"(for store {self.store_dir}; set NIX_STATE_DIR or --db)"
            )
        if not os.access(self.db_path, os.R_OK):
            raise StoreDatabaseError(f"Nix store database is not readable: {self.db_path}")
        try:
            conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30)
            conn.execute("PRAGMA query_only = ON")
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.Error as exc:
            raise StoreDatabaseError(f"cannot read Nix store database {self.db_path}: {exc}") from None
        missing = {"ValidPaths", "Refs", "DerivationOutputs"} - tables
        if missing:
            conn.close()
            raise StoreDatabaseError(
                f"{self.db_path} is not a Nix store database (missing tables: {', '.join(sorted(missing))})"
            )
        return conn

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
        except sqlite3.Error as exc:
            raise StoreDatabaseError(f"cannot read Nix store database {self.db_path}: {exc}") from None

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
        wanted = list(dict.fromkeys(paths))
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
                refs[referrer].append(ref_path)
        return self._infos(rows, refs)

    @staticmethod
    def _infos(rows: list[tuple], refs: dict[int, list[str]]) -> dict[str, PathInfo]:
        infos: dict[str, PathInfo] = {}
        for row_id, path, nar_hash, reg_time, deriver, nar_size, ca in rows:
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
        return dict(
            self._query(
                "SELECT o.id, o.path FROM DerivationOutputs o JOIN ValidPaths v ON v.id = o.drv "
                "WHERE v.path = ?",
                (drv_path,),
            )
        )

    # -- derivations ------------------------------------------------------------------------

    def derivation(self, drv_path: str) -> Derivation:
        """Parse (once) and return the derivation at ``drv_path``."""
        drv = self._drv_cache.get(drv_path)
        if drv is None:
            drv = read_derivation(drv_path)
            self._drv_cache[drv_path] = drv
        return drv

    def has_file(self, path: str) -> bool:
        return os.path.lexists(path)

    def derivation_closure(self, root_drv: str) -> Iterator[Derivation]:
        """Every derivation reachable through ``inputDrvs`` from ``root_drv``, root first.

        Only the root is kept in the cache: the caller holds what it needs of the rest (the
        40,000 parsed derivations of a system closure are 100 MB it would otherwise keep)."""
        seen = {root_drv}
        stack = [root_drv]
        cache = self._drv_cache
        while stack:
            path = stack.pop()
            drv = cache.get(path) or (self.derivation(path) if path == root_drv else read_derivation(path))
            yield drv
            for dep in drv.input_drvs:
                if dep not in seen:
                    seen.add(dep)
                    stack.append(dep)
