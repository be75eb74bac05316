"""What a comparison finds: differences with a kind, a place, before/after, and a likely cause."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Kind(str, Enum):
    """What differs (documented in docs/reproducibility.md and schemas/sbomgen-diff-report.schema.json)."""

    MISSING = "missing"  # only on the left (A)
    EXTRA = "extra"  # only on the right (B)
    TYPE = "type"  # file vs directory vs symlink vs archive...
    CONTENT = "content"  # bytes of a file or archive member
    MODE = "mode"  # permission bits
    SYMLINK = "symlink-target"
    OWNER = "owner"  # uid/gid/uname/gname of a tar member
    MTIME = "mtime"  # modification time of a tar member
    ORDER = "order"  # entries in another order
    GZIP_HEADER = "gzip-header"  # mtime / OS / name fields of a gzip header
    COMPRESSION = "compression"  # compressed bytes differ, the payload does not
    JSON = "json"  # a value in a JSON document (OCI config, manifest, index)
    DIGEST = "digest"  # a blob's digest differs (detail follows inside)
    NAR_HASH = "nar-hash"  # the NAR serialisations differ


class Cause(str, Enum):
    """The likely reason, where one can be inferred from the values."""

    TIMESTAMP = "timestamp"
    BUILD_PATH = "build-path"  # an embedded build directory or random temporary path
    STORE_PATH_HASH = "store-path-hash"  # same store path names, other hashes
    ORDERING = "ordering"
    COMPRESSION = "compression"
    PERMISSIONS = "permissions"


@dataclass(slots=True)
class Difference:
    path: str
    kind: Kind
    before: str | None = None
    after: str | None = None
    detail: str | None = None
    cause: Cause | None = None

    def as_json(self) -> dict:
        return {
            "path": self.path,
            "kind": self.kind.value,
            "before": self.before,
            "after": self.after,
            "detail": self.detail,
            "cause": self.cause.value if self.cause else None,
        }


@dataclass(slots=True)
class Comparison:
    left: str
    right: str
    kind: str  # "file" | "directory" | "tar" | "oci-layout" | "oci-archive" | "docker-archive" | "mixed"
    differences: list[Difference] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        return not self.differences

    def add(self, *differences: Difference) -> None:
        self.differences.extend(differences)

    def causes(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for diff in self.differences:
            key = diff.cause.value if diff.cause else "unknown"
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))

    def as_json(self, max_differences: int | None = None) -> dict:
        shown = self.differences if max_differences is None else self.differences[:max_differences]
        return {
            "schema": "https://sbomgen.dev/schemas/diff-report/v1",
            "left": self.left,
            "right": self.right,
            "kind": self.kind,
            "identical": self.identical,
            "differences_total": len(self.differences),
            "causes": self.causes(),
            "facts": dict(sorted(self.facts.items())),
            "differences": [d.as_json() for d in shown],
        }
