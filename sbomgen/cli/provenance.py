"""``provenance``: SLSA v1 provenance of Nix builds, signed with DSSE, and its verification.

``provenance ./result`` is short for ``provenance make ./result``.
"""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from enum import Enum
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from sbomgen.cli.common import DefaultCommandGroup, command, console, echo, exit_code_table, make_app, markup_safe, run_app, run_guarded
from sbomgen.cli.targets import TargetCommand, resolve, target_options
from sbomgen.errors import EXIT_CODES, VERIFY_EXIT_CODES
from sbomgen.fsutil import write_atomic


class ProvenanceGroup(DefaultCommandGroup):
    default_command = "make"


app = make_app(
    ProvenanceGroup,
    "provenance",
    "SLSA v1 provenance (in-toto Statement v1) for Nix builds, DSSE signing, verification.\n\n"
    "provenance --recursive ./result -o weather.intoto.json\n\n"
    + exit_code_table({**EXIT_CODES, **VERIFY_EXIT_CODES}),
)


def write_statement(statement: dict, output: str, sign_key: str | None) -> str:
    """Render (and sign, with a key) a statement and write it atomically; returns what was written."""
    from sbomgen import keys, provenance
    from sbomgen.formats.dsse import render_envelope
    from sbomgen.formats.provenance import render_statement

    if sign_key:
        text = render_envelope(provenance.sign_statement(statement, keys.load_signing_key(sign_key)))
    else:
        text = render_statement(statement)
    write_atomic(output, text)
    return text


@app.command("make", cls=TargetCommand)
@command()
@target_options
def make_command(
    target: Annotated[str | None, typer.Argument(metavar="TARGET", help="./result, a store path, a .drv (all its built outputs), FILE.nix or PATH#ATTR (or -f FILE.nix -A ATTR).", show_default=False)] = None,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Every dependency of the build closure, not only the direct inputs.")] = False,
    depth: Annotated[int | None, typer.Option("--depth", min=1, metavar="N", help="Dependencies up to N steps away (1 = direct inputs).")] = None,
    output: Annotated[str, typer.Option("--output", "-o", metavar="FILE", help="Where to write the statement (- for stdout).")] = "-",
    sign_key: Annotated[str | None, typer.Option("--sign-key", metavar="FILE", help="PEM private key (Ed25519 or ECDSA P-256): write a DSSE envelope.")] = None,
    db: Annotated[str | None, typer.Option("--db", metavar="FILE", help="Nix store database (default: $NIX_STATE_DIR/db/db.sqlite).")] = None,
) -> None:
    """Write the SLSA v1 provenance of a Nix build output."""

    def work() -> None:
        from sbomgen import keys, provenance

        chosen = resolve(target)
        if sign_key:
            keys.load_signing_key(sign_key)  # a bad key fails before any work
        err = console(stderr=True)
        status = err.status(f"Reading the build closure of {markup_safe(str(chosen))}…") if err.is_terminal and output != "-" else nullcontext()
        with status:
            made = provenance.make_statement(chosen, recursive=recursive, depth=depth, db_path=db)
        write_statement(made.statement, output, sign_key)
        if output != "-":
            deps = len(made.statement["predicate"]["buildDefinition"].get("resolvedDependencies", []))
            kind = "signed DSSE envelope" if sign_key else "statement"
            echo(f"wrote {output}: {kind}, {len(made.subjects)} subject(s), {deps} resolved dependencies")

    run_guarded(work, prog="provenance")


class KeyType(str, Enum):
    ed25519 = "ed25519"
    ecdsa_p256 = "ecdsa-p256"


@app.command("keygen")
@command()
def keygen_command(
    output: Annotated[str, typer.Option("--output", "-o", metavar="FILE", help="Private key file; the public key goes to FILE with .pub.pem.")] = "key.pem",
    key_type: Annotated[KeyType, typer.Option("--type", help="Key type.")] = KeyType.ed25519,
) -> None:
    """Make a signing key pair (PEM). $SBOMGEN_KEY_PASSWORD, when set, encrypts the private key."""

    def work() -> None:
        from sbomgen import keys

        public = (output[: -len(".pem")] if output.endswith(".pem") else output) + ".pub.pem"
        keyid = keys.generate(key_type.value, output, public)
        echo(f"wrote {output} (private, mode 0600) and {public} (public); key id {keyid}")

    run_guarded(work, prog="provenance")


@app.command("verify")
@command()
def verify_command(
    attestation: Annotated[str, typer.Argument(metavar="FILE", help="A statement or a DSSE envelope.", show_default=False)],
    key: Annotated[str | None, typer.Option("--key", metavar="FILE", help="PEM public key the envelope must be signed with.")] = None,
    json_report: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check the signature, then re-hash every subject and resolved dependency in the store.

    Exit 0 when everything verifies; otherwise the code of the most severe problem.
    """

    def work() -> None:
        from sbomgen import keys, provenance

        verify_key = keys.load_verify_key(key) if key else None
        statement, report = provenance.load_attestation(attestation, verify_key)
        if statement:
            err = console(stderr=True)
            if err.is_terminal and not json_report:
                columns = (TextColumn("Re-hashing"), BarColumn(), MofNCompleteColumn())
                with Progress(*columns, console=err, transient=True) as bar:
                    task = bar.add_task("hash", total=None)
                    provenance.verify_statement(statement, report, lambda done, total: bar.update(task, completed=done, total=total))
            else:
                provenance.verify_statement(statement, report)
        _print_report(report, json_report)
        if report.exit_code:
            raise typer.Exit(report.exit_code)

    run_guarded(work, prog="provenance")


def _print_report(report, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(report.as_json(), indent=2) + "\n")
        return
    for problem in report.problems:
        echo(f"provenance: FAIL {problem.line()}", err=True)
    if report.problems:
        echo(f"{report.source}: NOT verified: {len(report.problems)} problem(s)")
        return
    signature = f"signature OK (key {report.keyid[:16]}…), " if report.signed else "unsigned, "
    echo(
        f"{report.source}: verified: {signature}{report.subjects} subject(s) and "
        f"{report.dependencies} resolved dependencies ({report.checked} re-hashed: {report.rehashed('subject')} subject(s), "
        f"{report.rehashed('dependency')} dependencies; {report.skipped} not checkable)"
    )


def main() -> None:
    run_app(app, "provenance")


if __name__ == "__main__":
    main()
