"""What every command shares: the one error boundary (every failure -> one stderr line and its
documented exit code), signals, ``--debug``, the ``--max-*`` limit flags, and the escaping of
every string that reaches the terminal.

Exit codes that are not a :class:`SbomgenError`'s (documented in ``errors.EXIT_CODES``):

* 70 (``INTERNAL_ERROR_EXIT``): an unexpected exception, a bug. No command uses 70 as a
  verdict, so a crash can never read as "different", "violated", "invalid" or "not found".
* 130 / 143: interrupted by SIGINT / SIGTERM (temporary files removed on the way out).
* 141: stdout was closed before everything was written (``sbomgen diff a b | head -1``): the
  output is incomplete, so this is not success.
"""

from __future__ import annotations

import errno
import functools
import inspect
import os
import re
import signal
import sys
import tempfile
from collections.abc import Callable
from typing import Annotated

import typer
from typer._click.exceptions import ClickException
from typer.core import TyperGroup

from sbomgen.errors import BROKEN_PIPE_EXIT, INTERNAL_ERROR_EXIT, INTERRUPTED_EXIT, TERMINATED_EXIT, OutputWriteError, SbomgenError
from sbomgen.text import printable

# ---------------------------------------------------------------------------------------------
# escaping for the terminal and for rich

_BRACKET = re.compile(r"(\\*)\[")
_TAG_BODY = re.compile(r"[a-z#/@][^\[]*?]")  # what follows "[" in rich's tag pattern


def markup_safe(text: object) -> str:
    """``text`` for a rich console with markup on: control characters escaped, and every ``[``
    (with the backslashes before it) escaped so that ``[link=…]``, ``[/x]``, ``\\[b]`` print
    literally (emoji codes are off in :func:`console`).

    ``rich.markup.escape`` is not enough: it leaves a backslash before a ``[`` that does not
    look like a tag, which rich then swallows. Rich's rules: before a tag, 2k+1 backslashes
    print k and the tag as text; before any other ``[``, one backslash is dropped. The result
    must not be followed directly by a markup tag (a trailing backslash would escape it).
    """
    shown = printable(text)
    out, position = [], 0
    for match in _BRACKET.finditer(shown):
        out.append(shown[position:match.start()])
        run = len(match.group(1))
        tag_like = _TAG_BODY.match(shown, match.end()) is not None
        out.append("\\" * (2 * run + 1 if tag_like else run + 1) + "[")
        position = match.end()
    out.append(shown[position:])
    return "".join(out)


def console(stderr: bool = False):
    """A rich console for sbomgen's output: no highlighting, no emoji codes (``:smile:`` is
    text), no wrapping of long paths. Every untrusted string printed through it goes through
    :func:`markup_safe`."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # rich's own answer is SystemExit(1): "different"/"violated" for a diff or check
            # piped to head. Let the boundary say what happened instead (exit 141).
            self.quiet = True
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    return _Console(stderr=stderr, highlight=False, soft_wrap=True, emoji=False)


def echo(text: object = "", err: bool = False) -> None:
    """``print`` for lines that carry untrusted strings: control characters escaped."""
    print(printable(text), file=sys.stderr if err else sys.stdout)


# ---------------------------------------------------------------------------------------------
# signals and --debug

_debug = False


class Terminated(BaseException):
    """SIGTERM arrived: raised in the main thread so that every ``finally`` and context manager
    removes its temporary files. A ``BaseException``, like ``KeyboardInterrupt``, so that no
    ``except Exception`` on the way swallows it."""


def _on_signal(signum: int, _frame) -> None:
    # a second signal must not interrupt the cleanup the first one started
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated


def install_signal_handlers() -> None:
    """SIGTERM and SIGINT become exceptions in the main thread (see :class:`Terminated`)."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        if signal.getsignal(signum) in (signal.SIG_IGN,):
            continue  # ignored by whoever started us (nohup, a shell's background job): keep it so
        signal.signal(signum, _on_signal)


#: every temporary file and directory made through ``tempfile.mkstemp``/``mkdtemp`` in this
#: process, so that whatever a service left behind (a signal between creating a temp file and
#: entering its ``try``, a ``finally`` that was itself interrupted) is removed on the way out
_temporaries: list[str] = []


def _track_temporaries() -> None:
    """A safety net under every service's own cleanup: remember what ``tempfile`` creates."""
    if getattr(tempfile.mkstemp, "_sbomgen_tracked", False):
        return
    real_mkstemp, real_mkdtemp = tempfile.mkstemp, tempfile.mkdtemp

    def mkstemp(*args, **kwargs):
        fd, path = real_mkstemp(*args, **kwargs)
        _temporaries.append(os.fsdecode(path))
        return fd, path

    def mkdtemp(*args, **kwargs):
        path = real_mkdtemp(*args, **kwargs)
        _temporaries.append(os.fsdecode(path))
        return path

    mkstemp._sbomgen_tracked = True  # type: ignore[attr-defined]
    tempfile.mkstemp, tempfile.mkdtemp = mkstemp, mkdtemp


def remove_temporaries() -> None:
    """Remove what is left of this process's temporary files and directories (a temp file
    renamed into place as an output is no longer there under its temporary name)."""
    import shutil

    while _temporaries:
        path = _temporaries.pop()
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
        except OSError:
            pass


def debug_enabled() -> bool:
    return _debug or bool(os.environ.get("SBOMGEN_DEBUG"))


def _set_debug(value: bool) -> bool:
    global _debug
    if value:
        _debug = True
    return value


# ---------------------------------------------------------------------------------------------
# --debug on every command, --max-bytes / --max-members / --max-manifests on the readers


def _size(value: str | None) -> int | None:
    if value is None:
        return None
    from sbomgen.limits import parse_size

    try:
        size = parse_size(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if size < 1:
        raise typer.BadParameter("must be at least 1 byte")
    return size


def _limit_parameters() -> list[inspect.Parameter]:
    from sbomgen.limits import Limits

    defaults = Limits()
    options = {
        "max_bytes": (str | None, typer.Option(
            "--max-bytes", metavar="SIZE", callback=_size,
            help=f"At most SIZE bytes of content from one untrusted image or archive, e.g. 64G "
                 f"(default {defaults.max_bytes >> 30}G). Past any limit: exit 17 (2 where bad input is 2).")),
        "max_members": (int | None, typer.Option(
            "--max-members", metavar="N", min=1,
            help=f"At most N tar members or files in one input (default {defaults.max_members}).")),
        "max_manifests": (int | None, typer.Option(
            "--max-manifests", metavar="N", min=1,
            help=f"At most N manifests and indexes in one image (default {defaults.max_manifests}).")),
    }
    return [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[kind, option])
            for name, (kind, option) in options.items()]


def _debug_parameter() -> inspect.Parameter:
    option = typer.Option("--debug", callback=_set_debug, help="On an unexpected error (exit 70), show the traceback; as SBOMGEN_DEBUG=1.")
    return inspect.Parameter("debug", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[bool, option])


def command(limits: bool = False):
    """Give a command ``--debug`` and, with ``limits``, the ``--max-*`` flags of the commands that
    read images, archives or documents from elsewhere (applied with ``limits.configure`` before
    the command runs). One definition, so every command spells and documents them alike."""

    def decorate(func: Callable) -> Callable:
        signature = inspect.signature(func, eval_str=True)
        extra = [_debug_parameter(), *(_limit_parameters() if limits else [])]

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            kwargs.pop("debug", None)
            if limits:
                from sbomgen import limits as bounds

                bounds.configure(**{name: kwargs.pop(name, None) for name in ("max_bytes", "max_members", "max_manifests")})
            return func(*args, **kwargs)

        wrapper.__signature__ = signature.replace(parameters=[*signature.parameters.values(), *extra])
        wrapper.__annotations__ = {p.name: p.annotation for p in wrapper.__signature__.parameters.values()}
        del wrapper.__wrapped__  # typer must see the new signature, not the function's
        return wrapper

    return decorate


# ---------------------------------------------------------------------------------------------
# the app and its entry point


class DefaultCommandGroup(TyperGroup):
    """A group that runs ``default_command`` when the first argument is not a sub-command,
    so ``sbomgen ./result`` means ``sbomgen sbom ./result``."""

    default_command = ""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        lead = []
        while args and args[0] == "--debug":  # sbomgen --debug ./result
            lead.append(args.pop(0))
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, [*lead, *args])


def _show_version(ctx: typer.Context, value: bool) -> None:
    if value:
        from sbomgen import __version__

        name = ctx.find_root().command.name
        typer.echo(f"sbomgen {__version__}" if name == "sbomgen" else f"{name} (sbomgen) {__version__}")
        raise typer.Exit()


def _root(
    version: Annotated[bool | None, typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version.")] = None,
    debug: Annotated[bool, typer.Option("--debug", callback=_set_debug, help="On an unexpected error (exit 70), show the traceback.")] = False,
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


#: the boundary's own codes, for the exit-code lists of commands with their own convention
BOUNDARY_CODES = (
    f"{INTERNAL_ERROR_EXIT:>4}  unexpected internal error (a bug: never a verdict)\n"
    f"{INTERRUPTED_EXIT:>4}  interrupted (SIGINT)\n"
    f"{BROKEN_PIPE_EXIT:>4}  stdout closed before the output was complete\n"
    f"{TERMINATED_EXIT:>4}  terminated (SIGTERM)\n"
)


def exit_code_table(codes: dict[int, str]) -> str:
    """Exit codes for a ``--help`` text, kept verbatim by click (the ``\\b`` marker)."""
    return "\b\nExit codes:\n" + "\n".join(f"  {code:>3}  {meaning}" for code, meaning in sorted(codes.items()))


def _stdout_gone() -> None:
    """stdout's reader went away: point fd 1 at /dev/null so that the interpreter's last flush
    does not print "Exception ignored ... BrokenPipeError" (Python's documented recipe)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _flush_stdout() -> None:
    """Flush stdout now, inside the boundary: a pipe closed early shows here, not at exit."""
    try:
        sys.stdout.flush()
    except ValueError:  # closed
        pass


def _say(prog: str, message: str) -> None:
    try:
        print(f"{prog}: error: {printable(message, newlines=False)}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass  # stderr is gone too: the exit code still tells


def run_app(app: typer.Typer, prog: str) -> None:
    """The entry point of ``sbomgen`` and ``provenance``: signals, ``--debug``, the limit flags,
    and what escapes the commands' own boundary (usage errors, a signal during start-up)."""
    install_signal_handlers()
    _track_temporaries()
    try:
        try:
            code = typer.main.get_command(app).main(prog_name=prog, standalone_mode=False)
        finally:
            remove_temporaries()
            _flush_stdout()
    except ClickException as exc:  # usage errors: click's own message and exit 2
        exc.show()
        code = exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        _say(prog, "interrupted (SIGINT)")
        code = INTERRUPTED_EXIT
    except Terminated:
        _say(prog, "terminated (SIGTERM)")
        code = TERMINATED_EXIT
    except BrokenPipeError:
        _stdout_gone()
        code = BROKEN_PIPE_EXIT
    except SystemExit as exc:
        # click's answer to a broken pipe outside the commands (--help | head) is exit 1, after
        # wrapping stdout: make it the broken-pipe code like everywhere else
        if type(sys.stdout).__name__ != "PacifyFlushWrapper":
            raise
        _stdout_gone()
        code = BROKEN_PIPE_EXIT if exc.code == 1 else exc.code
    sys.exit(code or 0)


# ---------------------------------------------------------------------------------------------
# the error boundary

#: errno values that only ever mean "this could not be written"
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


def _os_error_line(exc: OSError) -> tuple[str, int] | None:
    """An OSError nothing below translated: disk full, quota, read-only file system and
    permission problems are the environment's, not a bug (exit 9); the rest is a bug."""
    where = f" {exc.filename}" if exc.filename else " a temporary file" if exc.errno in _WRITE_ERRNOS else ""
    reason = exc.strerror or str(exc)
    if exc.errno in _WRITE_ERRNOS:
        return f"cannot write{where}: {reason}", OutputWriteError.exit_code
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"cannot access{where}: {reason}", OutputWriteError.exit_code
    return None


def run_guarded(work: Callable[[], None], prog: str = "sbomgen", error_code: int | None = None) -> None:
    """Run ``work`` inside the one error boundary.

    * a :class:`SbomgenError` -> ``PROG: error: ...`` and its exit code (or ``error_code`` for
      commands with a fixed convention, like diff's and check's 2 for bad input);
    * an unexpected exception -> ``PROG: internal error: ...`` and 70, a code no command uses
      as a verdict (``--debug`` or ``SBOMGEN_DEBUG=1`` re-raise it for the traceback);
    * a disk-full or permission ``OSError`` -> 9; SIGINT -> 130; SIGTERM -> 143;
    * stdout closed by its reader -> 141, never 0 (``sbomgen diff a b | head`` is not "identical").

    Every line is one line with control characters escaped: messages carry names from inputs.
    """
    try:
        try:
            work()
        finally:
            _flush_stdout()
    except typer.Exit:
        raise
    except BrokenPipeError:
        _stdout_gone()
        raise typer.Exit(BROKEN_PIPE_EXIT) from None
    except SbomgenError as exc:
        _say(prog, str(exc))
        raise typer.Exit(error_code if error_code is not None else exc.exit_code) from None
    except KeyboardInterrupt:
        _say(prog, "interrupted (SIGINT)")
        raise typer.Exit(INTERRUPTED_EXIT) from None
    except Terminated:
        _say(prog, "terminated (SIGTERM)")
        raise typer.Exit(TERMINATED_EXIT) from None
    except OSError as exc:
        known = _os_error_line(exc)
        if known is None:
            _internal(prog, exc)
        _say(prog, known[0])
        raise typer.Exit(error_code if error_code is not None else known[1]) from None
    except Exception as exc:  # noqa: BLE001 - last line of defence, reported as a bug
        _internal(prog, exc)


def _internal(prog: str, exc: BaseException) -> None:
    """A bug: one escaped line (the exception text may carry bytes from an input), exit 70;
    with ``--debug`` or ``SBOMGEN_DEBUG`` the traceback first, and still exit 70."""
    if debug_enabled():
        import traceback

        try:
            sys.stderr.write(printable("".join(traceback.format_exception(exc))))
        except (OSError, ValueError):
            pass
    text = printable(f"{type(exc).__name__}: {exc}", newlines=False)
    if len(text) > 500:
        text = text[:500] + "…"
    try:
        print(f"{prog}: internal error: {text} (a bug: please report it{'' if debug_enabled() else '; --debug shows the traceback'})",
              file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass
    raise typer.Exit(INTERNAL_ERROR_EXIT) from None
