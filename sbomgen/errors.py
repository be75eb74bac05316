"""Errors sbomgen reports to users, each with its own documented exit code.

Every layer raises a subclass of :class:`SbomgenError`; the CLI prints ``str(error)`` as one
line on stderr and exits with ``error.exit_code``.  Codes are part of the CLI contract
(documented in the README and ``sbomgen --help``): never renumber one.
"""

from __future__ import annotations


def first_of(problems: list[str]) -> str:
    """The first of several problems, and how many more there are: one line for stderr."""
    return problems[0] + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")


#: exit code of an unexpected error (a bug): EX_SOFTWARE from sysexits.h, a code no command
#: uses for a verdict (diff's "different", check's "violated", validate's "invalid" are 1).
INTERNAL_ERROR_EXIT = 70


class SbomgenError(Exception):
    """Base class: a problem with the user's input or environment, not a bug."""

    exit_code = INTERNAL_ERROR_EXIT


class UsageError(SbomgenError):
    """Bad arguments or environment (e.g. a malformed ``SOURCE_DATE_EPOCH``); click uses 2 too."""

    exit_code = 2


class InputNotFoundError(SbomgenError):
    """The path does not exist, or ``./result`` is a dangling symlink."""

    exit_code = 3


class NotInStoreError(SbomgenError):
    """The path exists but is not inside the Nix store directory."""

    exit_code = 4


class InvalidStorePathError(SbomgenError):
    """The path is inside the store directory but not registered as valid in the store DB."""

    exit_code = 5


class DerivationError(SbomgenError):
    """A ``.drv`` file is missing, unreadable or not a well-formed ATerm derivation."""

    exit_code = 6


class StoreDatabaseError(SbomgenError):
    """The Nix store database is missing, unreadable, locked or not a Nix store DB."""

    exit_code = 7


class OutputFormatError(SbomgenError):
    """An unknown or unsupported output format or schema version was asked for."""

    exit_code = 8


class OutputWriteError(SbomgenError):
    """An output file could not be written."""

    exit_code = 9


class MetadataError(SbomgenError):
    """A ``--meta`` file is unreadable or not in the ``nix-env -qa --meta --json`` shape."""

    exit_code = 10


class DocumentInvalidError(SbomgenError):
    """A document sbomgen produced failed validation (this is a bug: please report it)."""

    exit_code = 11


class NarError(SbomgenError):
    """A path cannot be serialised to a NAR (unsupported file type, unreadable file)."""

    exit_code = 12


class NixCommandError(SbomgenError):
    """The ``nix`` tools are missing, or a Nix command (build, evaluation) failed."""

    exit_code = 13


class SigningKeyError(SbomgenError):
    """A signing or verification key is missing, unreadable or of an unsupported type."""

    exit_code = 14


class ArchiveError(SbomgenError):
    """A tar, gzip or zstd file is truncated, corrupt or not what it claims to be."""

    exit_code = 15


class ImageError(SbomgenError):
    """Not an OCI image / docker archive, or one whose manifest points at a missing blob or
    whose blob does not match its digest."""

    exit_code = 16


class LimitExceededError(SbomgenError):
    """An untrusted input costs more than a configured bound (bytes, entries, manifests,
    nesting): see :mod:`sbomgen.limits` and the ``--max-*`` flags."""

    exit_code = 17


# ``provenance verify`` verdicts: the statement was read, and something does not hold.


class SignatureError(SbomgenError):
    """No signature of the envelope verifies with the given key."""

    exit_code = 20


class SubjectMismatchError(SbomgenError):
    """A subject no longer hashes to the digest the statement records (or is missing)."""

    exit_code = 21


class DependencyMismatchError(SbomgenError):
    """A resolved dependency in the store hashes to another digest than recorded."""

    exit_code = 22


class DependencyMissingError(SbomgenError):
    """A resolved dependency named by the statement is not in the store."""

    exit_code = 23


class MalformedAttestationError(SbomgenError):
    """The file is not a well-formed in-toto statement or DSSE envelope."""

    exit_code = 24


#: exit code -> meaning, for ``--help`` and the README.
EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "a verdict: different (diff), violated (check), invalid (validate), not found (why)",
    2: "bad command-line usage",
    InputNotFoundError.exit_code: "input path missing or dangling ./result symlink",
    NotInStoreError.exit_code: "input is not inside the Nix store",
    InvalidStorePathError.exit_code: "store path not registered (valid) in the store database",
    DerivationError.exit_code: "missing or corrupt .drv file",
    StoreDatabaseError.exit_code: "store database missing or unreadable",
    OutputFormatError.exit_code: "unknown output format or schema version",
    OutputWriteError.exit_code: "cannot write an output file",
    MetadataError.exit_code: "bad --meta file",
    DocumentInvalidError.exit_code: "generated document failed validation (a bug)",
    NarError.exit_code: "cannot serialise a path to NAR",
    NixCommandError.exit_code: "nix not installed, or a nix build/evaluation failed",
    SigningKeyError.exit_code: "missing, unreadable or unsupported key",
    ArchiveError.exit_code: "truncated or corrupt archive (tar, gzip, zstd)",
    ImageError.exit_code: "not an image, missing blob, or blob digest mismatch",
    LimitExceededError.exit_code: "input exceeds a limit (--max-bytes, --max-members, --max-manifests)",
    INTERNAL_ERROR_EXIT: "unexpected internal error (a bug: please report it)",
}

#: ``provenance verify`` exit codes (0: everything verified).
VERIFY_EXIT_CODES: dict[int, str] = {
    SignatureError.exit_code: "bad signature (no signature verifies with the key)",
    SubjectMismatchError.exit_code: "a subject does not match its digest, or is missing",
    DependencyMismatchError.exit_code: "a resolved dependency does not match its digest",
    DependencyMissingError.exit_code: "a resolved dependency is missing from the store",
    MalformedAttestationError.exit_code: "not a well-formed statement or DSSE envelope",
}


# Exit codes of the CLI's error boundary that are no SbomgenError's (sbomgen/cli/common.py).

#: SIGINT (Ctrl-C), as a shell reports a process killed by it: 128 + 2
INTERRUPTED_EXIT = 130
#: stdout was closed before everything was written (``| head``): 128 + SIGPIPE, never success
BROKEN_PIPE_EXIT = 141
#: SIGTERM: temporary files removed, then 128 + 15
TERMINATED_EXIT = 143

EXIT_CODES.update({
    INTERRUPTED_EXIT: "interrupted (SIGINT); temporary files removed",
    BROKEN_PIPE_EXIT: "stdout closed before the output was complete (broken pipe)",
    TERMINATED_EXIT: "terminated (SIGTERM); temporary files removed",
})
