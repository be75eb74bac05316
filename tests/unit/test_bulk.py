"""The collector pause restores the collector's state, also on errors and when nested."""

from __future__ import annotations

import gc

import pytest

from sbomgen.bulk import bulk, collector_paused


def test_paused_and_restored_even_on_error():
    assert gc.isenabled()
    with pytest.raises(ValueError), collector_paused():
        assert not gc.isenabled()
        raise ValueError("boom")
    assert gc.isenabled()


def test_nested_pause_does_not_resume_early():
    @bulk
    def inner() -> bool:
        return gc.isenabled()

    with collector_paused():
        assert inner() is False
        assert not gc.isenabled()  # the inner block must not have re-enabled it
    assert gc.isenabled()


def test_left_disabled_if_it_was_disabled():
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
