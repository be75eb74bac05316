"""What every command shares: turning errors into one stderr line and an exit code."""

from __future__ import annotations

import sys
from collections.abc import Callable

import typer

from sbomgen.errors import SbomgenError


def run_guarded(work: Callable[[], None]) -> None:
    """Run ``work``; a :class:`SbomgenError` becomes ``sbomgen: error: ...`` and its exit code.

    Anything else is a bug: one line naming the exception, exit 1, no traceback unless
    ``SBOMGEN_DEBUG`` is set.
    """
    try:
        work()
    except SbomgenError as exc:
        message = str(exc).replace("\n", " ")
        print(f"sbomgen: error: {message}", file=sys.stderr)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        print("sbomgen: interrupted", file=sys.stderr)
        raise typer.Exit(130) from None
    except BrokenPipeError:
        raise typer.Exit(0) from None
    except Exception as exc:  # noqa: BLE001 - last line of defence, reported as a bug
        import os

        if os.environ.get("SBOMGEN_DEBUG"):
            raise
        print(f"sbomgen: internal error: {type(exc).__name__}: {exc} (set SBOMGEN_DEBUG=1 for a traceback)", file=sys.stderr)
        raise typer.Exit(1) from None
