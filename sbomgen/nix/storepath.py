"""Store paths: parsing names, finding the store directory, resolving what the user typed.

The store directory is never assumed to be ``/nix/store``: it is ``$NIX_STORE_DIR`` when set,
and otherwise read off the path itself (the parent of the ``HASH-NAME`` entry), so a
``./result`` into a private or chroot store works without configuration.
"""

from __future__ import annotations

import errno
import functools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sbomgen.errors import InputNotFoundError, NotInStoreError

#: Nix base32 alphabet (no e, o, u, t).
_HASH_CHARS = "0-9a-df-np-sv-z"
_STORE_NAME_RE = re.compile(rf"[{_HASH_CHARS}]{{32}}-[A-Za-z0-9+\-._?=]+")


def is_store_name(name: str) -> bool:
    """True when ``name`` looks like ``HASH-NAME``, the first component below the store dir
    (and nothing more: no ``/``, no trailing newline, no ``.``/``..``)."""
    return bool(_STORE_NAME_RE.fullmatch(name))


def is_store_path(path: object, store_dir: str) -> bool:
    """True when ``path`` is exactly ``STORE_DIR/HASH-NAME``: a store path of ``store_dir``,
    not a path inside one, not one of another store, not ``STORE_DIR/../x``."""
    return isinstance(path, str) and _store_path_re(store_dir)(path) is not None


@functools.lru_cache(maxsize=16)
def _store_path_re(store_dir: str) -> Callable[[str], re.Match[str] | None]:
    """``fullmatch`` of ``STORE_DIR/HASH-NAME`` (one C call)."""
    return re.compile(re.escape(store_dir.rstrip("/")) + "/" + _STORE_NAME_RE.pattern).fullmatch


@functools.lru_cache(maxsize=16)
def store_paths_matcher(store_dir: str) -> Callable[[str], re.Match[str] | None]:
    """``fullmatch`` of store paths of ``store_dir`` joined by ``\\n`` (no store path holds one):
    all the paths of a ``.drv`` checked in one C call."""
    one = re.escape(store_dir.rstrip("/")) + "/" + _STORE_NAME_RE.pattern
    return re.compile(f"(?:{one}\n)*{one}").fullmatch


def path_hash(store_path: str) -> str:
    """The 32-character base32 hash part of a store path."""
    return os.path.basename(store_path)[:32]


def path_name(store_path: str) -> str:
    """The name part of a store path (after ``HASH-``), e.g. ``glibc-2.40-66-dev``."""
    return os.path.basename(store_path)[33:]


@dataclass(frozen=True, slots=True)
class ResolvedInput:
    """What the user asked about: the top-level store path and the store it lives in."""

    argument: str
    store_dir: str
    store_path: str

    @property
    def is_derivation(self) -> bool:
        return self.store_path.endswith(".drv")


def _store_dir_from_env() -> str | None:
    value = os.environ.get("NIX_STORE_DIR")
    return value.rstrip("/") if value else None


def resolve_input(argument: str) -> ResolvedInput:
    """Resolve a ``./result`` symlink, a store path, a path inside one, or a ``.drv`` path.

    Raises :class:`InputNotFoundError` for missing paths and dangling links, and
    :class:`NotInStoreError` when the target is not below a Nix store directory.
    """
    if not argument:
        raise InputNotFoundError("no input path given")
    candidate = Path(argument)
    if not os.path.lexists(candidate):
        raise InputNotFoundError(f"no such file or directory: {argument}")
    try:
        os.stat(candidate)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputNotFoundError(f"symlink loop: {argument} never resolves to a file") from None
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
            raise InputNotFoundError(f"cannot resolve {argument}: {exc.strerror or exc}") from None
    if candidate.is_symlink() and not candidate.exists():
        target = os.readlink(candidate)
        raise InputNotFoundError(
            f"dangling symlink: {argument} -> {target} (was the store path garbage-collected?)"
        )
    real = Path(os.path.realpath(candidate))
    env_store = _store_dir_from_env()
    if env_store is not None:
        real_store = Path(os.path.realpath(env_store))
        try:
            relative = real.relative_to(real_store)
        except ValueError:
            raise NotInStoreError(
                f"{argument} resolves to {real}, which is not inside the Nix store "
                f"{env_store} (NIX_STORE_DIR)"
            ) from None
        if not relative.parts or not is_store_name(relative.parts[0]):
            raise NotInStoreError(f"{argument} resolves to {real}, which is not a store path")
        return ResolvedInput(argument, env_store, f"{env_store}/{relative.parts[0]}")
    parts = real.parts
    for index, part in enumerate(parts[1:], start=1):
        if is_store_name(part) and index >= 2:
            store_dir = str(Path(*parts[:index]))
            return ResolvedInput(argument, store_dir, f"{store_dir}/{part}")
    raise NotInStoreError(
        f"{argument} resolves to {real}, which is not inside a Nix store "
        "(expected <store-dir>/<hash>-<name>; set NIX_STORE_DIR for a non-standard store)"
    )


def default_state_dir(store_dir: str) -> str:
    """The Nix state directory belonging to ``store_dir``.

    ``$NIX_STATE_DIR`` wins; otherwise the standard layout puts ``<prefix>/store`` beside
    ``<prefix>/var/nix`` (``/nix/store`` -> ``/nix/var/nix``, also for ``--store`` chroots).
    """
    env_state = os.environ.get("NIX_STATE_DIR")
    if env_state:
        return env_state.rstrip("/")
    return str(Path(store_dir).parent / "var" / "nix")


#: where Nix keeps the store unless ``NIX_STORE_DIR`` says otherwise
DEFAULT_STORE_DIR = "/nix/store"


def configured_store_dir() -> str:
    """The store directory in force for this process: ``$NIX_STORE_DIR``, else ``/nix/store``.

    For paths that come from documents rather than from the user (a statement's ``uri``),
    which must lie in this store and cannot be used to find one."""
    return _store_dir_from_env() or DEFAULT_STORE_DIR
