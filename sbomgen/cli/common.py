"""What every command shares: turning errors into one stderr line and an exit code."""

from __future__ import annotations

import sys
from collections.abc import Callable

from typing import Annotated, Optional

import click
import typer
from typer.core import TyperGroup

from sbomgen.errors import SbomgenError


class DefaultCommandGroup(TyperGroup):
    """A group that runs ``default_command`` when the first argument is not a sub-command,
    so ``sbomgen ./result`` means ``sbomgen sbom ./result``."""

    default_command = ""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


def _show_version(ctx: typer.Context, value: bool) -> None:
    if value:
        from sbomgen import __version__

        name = ctx.find_root().command.name
        typer.echo(f"sbomgen {__version__}" if name == "sbomgen" else f"{name} (sbomgen) {__version__}")
        raise typer.Exit()


def _root(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version.")] = None,
) -> None:
    """Supply-chain evidence for Nix builds."""


def make_app(group: type[DefaultCommandGroup], name: str, help_text: str) -> typer.Typer:
    """A typer app with sbomgen's conventions: a default command, ``--version``, plain help."""
    app = typer.Typer(
        cls=group,
        name=name,
        help=help_text,
        context_settings={"help_option_names": ["-h", "--help"]},
        add_completion=False,
        no_args_is_help=True,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
    )
    app.callback()(_root)
    return app


def exit_code_table(codes: dict[int, str]) -> str:
    """Exit codes for a ``--help`` text, kept verbatim by click (the ``\\b`` marker)."""
    return "\b\nExit codes:\n" + "\n".join(f"  {code:>2}  {meaning}" for code, meaning in sorted(codes.items()))


def run_guarded(work: Callable[[], None], prog: str = "sbomgen", error_code: int | None = None) -> None:
    """Run ``work``; a :class:`SbomgenError` becomes ``PROG: error: ...`` and its exit code
    (or ``error_code`` for commands with a fixed convention, like diff's 2 for bad input).

    Anything else is a bug: one line naming the exception, exit 1, no traceback unless
    ``SBOMGEN_DEBUG`` is set.
    """
    try:
        work()
    except (click.exceptions.Exit, typer.Exit):
        raise
    except SbomgenError as exc:
        message = str(exc).replace("\n", " ")
        print(f"{prog}: error: {message}", file=sys.stderr)
        raise typer.Exit(error_code if error_code is not None else exc.exit_code) from None
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        raise typer.Exit(130) from None
    except BrokenPipeError:
        raise typer.Exit(0) from None
    except Exception as exc:  # noqa: BLE001 - last line of defence, reported as a bug
        import os

        if os.environ.get("SBOMGEN_DEBUG"):
            raise
        print(f"{prog}: internal error: {type(exc).__name__}: {exc} (set SBOMGEN_DEBUG=1 for a traceback)", file=sys.stderr)
        raise typer.Exit(1) from None
