"""The target options every command that reads a build shares: ``-f FILE -A ATTR --arg NAME
EXPR --argstr NAME VALUE`` (as ``nix-build``), and flake references (``PATH#ATTR``) as TARGET.

One definition (:func:`target_options`), so ``sbom``, ``provenance make``, ``graph``, ``why``
and ``check`` spell and document them alike.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated

import typer
from typer.core import TyperCommand

from sbomgen.errors import UsageError

_PAIR_OPTIONS = ("--arg", "--argstr")


class TargetCommand(TyperCommand):
    """Reads ``--arg NAME EXPR`` / ``--argstr NAME VALUE`` (two values, as nix-build takes them)
    into one option value ``NAME=VALUE`` each, which click can parse."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        rewritten, index = [], 0
        while index < len(args):
            arg = args[index]
            if arg == "--":
                rewritten += args[index:]
                break
            if arg in _PAIR_OPTIONS:
                if index + 2 >= len(args):
                    raise typer.BadParameter(f"{arg} takes a NAME and a value", param_hint=arg)
                name, value = args[index + 1], args[index + 2]
                if "=" in name:
                    raise typer.BadParameter(f"{name!r} is not a Nix identifier", param_hint=arg)
                rewritten.append(f"{arg}={name}={value}")
                index += 3
                continue
            rewritten.append(arg)
            index += 1
        return super().parse_args(ctx, rewritten)


def _pairs(kind: str, values: list[str] | None) -> list[tuple[str, str, str]]:
    result = []
    for value in values or []:
        name, sep, rest = value.partition("=")
        if not sep:
            raise UsageError(f"{kind} takes a NAME and a value ({kind} NAME VALUE)")
        result.append((kind, name, rest))
    return result


def make_target(target: str | None, file: str | None, attr: str | None, args: list[tuple[str, str, str]]):
    """What the user named: a path string (``./result``, a store path, an image, an SBOM), or an
    :class:`~sbomgen.nix.evaluate.ExpressionTarget` for ``-f FILE``/``FILE.nix``/``PATH#ATTR``."""
    import os

    from sbomgen.nix.evaluate import expression_target, flake_target, looks_like_flake_ref

    if file is not None:
        if target is not None:
            raise UsageError(f"give either TARGET ({target}) or -f FILE, not both")
        return expression_target(file, attr, args)
    if target is None:
        raise UsageError("no target: give ./result, a store path, a .drv, PATH#ATTR, or -f FILE.nix [-A ATTR]")
    if target.endswith(".nix") and os.path.isfile(target):  # nix-build FILE.nix -A ATTR
        return expression_target(target, attr, args)
    if looks_like_flake_ref(target):
        if attr or args:
            raise UsageError("-A/--arg/--argstr apply to -f FILE; a flake reference names its attribute after '#'")
        return flake_target(target)
    if attr or args:
        raise UsageError(f"-A/--arg/--argstr need a Nix expression (-f FILE.nix); {target} is not one")
    return target


def _parameters() -> list[inspect.Parameter]:
    options = {
        "file": (str | None, typer.Option(
            "--file", "-f", metavar="FILE.nix",
            help="Evaluate this Nix expression (as nix-build FILE); with -A, one of its attributes.")),
        "attr": (str | None, typer.Option(
            "--attr", "-A", metavar="ATTR", help="Attribute path in the expression (as nix-build -A).")),
        "arg": (list[str] | None, typer.Option(
            "--arg", metavar="NAME EXPR", help="Pass NAME = EXPR (a Nix expression) to the file's function (repeatable).")),
        "argstr": (list[str] | None, typer.Option(
            "--argstr", metavar="NAME VALUE", help="Pass NAME = \"VALUE\" (a string) to the file's function (repeatable).")),
    }
    return [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[kind, option])
            for name, (kind, option) in options.items()]


def target_options(func: Callable) -> Callable:
    """Give a command taking ``target`` the ``-f/-A/--arg/--argstr`` options; the command gets
    ``target`` as a path string or an expression target. Register it with ``cls=TargetCommand``."""
    signature = inspect.signature(func, eval_str=True)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        pairs = _pairs("--arg", kwargs.pop("arg", None)) + _pairs("--argstr", kwargs.pop("argstr", None))
        file, attr = kwargs.pop("file", None), kwargs.pop("attr", None)
        kwargs["target"] = _deferred(kwargs.get("target"), file, attr, pairs)
        return func(*args, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=[*signature.parameters.values(), *_parameters()])
    wrapper.__annotations__ = {p.name: p.annotation for p in wrapper.__signature__.parameters.values()}
    del wrapper.__wrapped__
    return wrapper


class _deferred:
    """The target, resolved inside the command's error boundary (``run_guarded``): a bad
    ``-f``/``-A`` is one line and its exit code, like every other error."""

    def __init__(self, target, file, attr, pairs):
        self.parts = (target, file, attr, pairs)

    def __call__(self):
        return make_target(*self.parts)


def shift_name(target, name: str | None):
    """``why -f FILE -A ATTR NAME``: click gives NAME to the optional TARGET, so with ``-f`` and
    no second argument, that argument is the NAME."""
    if name is None and isinstance(target, _deferred) and target.parts[1] is not None:
        given, file, attr, pairs = target.parts
        return _deferred(None, file, attr, pairs), given
    return target, name


def resolve(target):
    """The target a command was given (call inside ``run_guarded``)."""
    return target() if isinstance(target, _deferred) else target
