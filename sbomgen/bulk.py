"""Building big, acyclic data without the cyclic garbage collector.

A build-time SBOM of a NixOS-sized closure creates millions of dicts, tuples and strings
(40,000 parsed derivations, components and two documents). None of them form reference
cycles, so reference counting frees them; but every few hundred allocations CPython's cyclic
collector runs, and its full collections traverse every live object: 2 s of the 7 s a
40,000-package build-time SBOM took. Pausing it while that data is built costs no memory
(measured: the same peak RSS) and gives those seconds back.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def collector_paused() -> Iterator[None]:
    """Disable the cyclic collector for the block (reentrant); restore it afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def bulk(function: Callable[P, R]) -> Callable[P, R]:
    """Run ``function`` with the cyclic collector paused."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with collector_paused():
            return function(*args, **kwargs)

    return wrapper
