"""What one untrusted input may cost: bytes, members, manifests, nesting.

Images, archives and documents from elsewhere are parsed with these bounds, so that a small
crafted input (a gzip bomb, a sparse tar member, an index that fans out a thousand times a
thousand) ends in one clear error instead of an exhausted machine. The defaults suit real
images (a NixOS closure of several GiB); each is raised by a command-line flag
(``--max-bytes``, ``--max-members``, ``--max-manifests``) on the commands that read such input.

Services read :func:`current`; the CLI calls :func:`configure` once per command.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sbomgen.errors import LimitExceededError

GiB = 1 << 30
MiB = 1 << 20


@dataclass(frozen=True, slots=True)
class Limits:
    #: decompressed bytes read from one input (all its layers / members together)
    max_bytes: int = 32 * GiB
    #: tar members in one input (all layers together), files in one directory tree
    max_members: int = 2_000_000
    #: manifests and indexes reachable from one index.json / manifest.json
    max_manifests: int = 1_000
    #: nesting of indexes within indexes, and of archives within archives (diff)
    max_nesting: int = 8
    #: one JSON document inside an image (manifest, config, index) or a statement/envelope
    max_json_bytes: int = 16 * MiB
    #: nesting depth of arrays/objects in one JSON document
    max_json_depth: int = 64
    #: one document read as a whole (SBOM, policy, key)
    max_document_bytes: int = 1 * GiB


_current = Limits()


def current() -> Limits:
    """The limits in force for this process."""
    return _current


def configure(**changes: int | None) -> Limits:
    """Set some limits (``None`` keeps the default); returns the limits now in force."""
    global _current
    _current = replace(_current, **{key: value for key, value in changes.items() if value is not None})
    return _current


def parse_size(text: str) -> int:
    """``1048576``, ``512K``, ``64M``, ``32G``, ``1T`` (binary units, case-insensitive; a
    trailing ``B``/``iB`` is allowed) as a number of bytes."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    raw = text.strip().upper().removesuffix("IB").removesuffix("B")
    number, unit = (raw[:-1], raw[-1]) if raw and raw[-1] in units else (raw, "")
    if not number.isdigit():
        raise ValueError(f"not a size: {text!r} (use e.g. 512M or 32G)")
    return int(number) * units[unit]


class Budget:
    """Counts what one input has cost so far, and stops it at the limit.

    ``what`` names the input in the error; ``flag`` is the option that raises the limit.
    """

    __slots__ = ("what", "bytes", "members", "limits")

    def __init__(self, what: str, limits: Limits | None = None) -> None:
        self.what = what
        self.bytes = 0
        self.members = 0
        self.limits = limits or current()

    def add_bytes(self, count: int) -> None:
        self.bytes += count
        if self.bytes > self.limits.max_bytes:
            raise LimitExceededError(
                f"{self.what}: more than {self.limits.max_bytes} bytes of content (raise the limit with --max-bytes)"
            )

    def add_member(self, count: int = 1) -> None:
        self.members += count
        if self.members > self.limits.max_members:
            raise LimitExceededError(
                f"{self.what}: more than {self.limits.max_members} entries (raise the limit with --max-members)"
            )
