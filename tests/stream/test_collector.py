"""`stream.collector`: the worker's garbage-collector thresholds, parsed and applied."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from claimstream.model.config import ConfigError
from claimstream.stream.collector import DEFAULT, thresholds, tune
from claimstream.stream.settings import Settings


@pytest.fixture
def restored_collector() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_thresholds_are_three_whole_numbers() -> None:
    assert thresholds("10000,10,100") == (10000, 10, 100)


def test_python_leaves_cpythons_own_thresholds() -> None:
    assert thresholds("python") is None


@pytest.mark.parametrize("text", ["", "10000,10", "a,b,c", "0,10,10", "1,2,3,4"])
def test_anything_else_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(ConfigError, match=DEFAULT):
        thresholds(text)


def test_tune_sets_the_thresholds_and_freezes_what_exists(restored_collector: None) -> None:
    assert tune("5000,7,50") == (5000, 7, 50)
    assert gc.get_threshold() == (5000, 7, 50)
    assert gc.get_freeze_count() > 0


def test_tune_python_changes_nothing(restored_collector: None) -> None:
    before = gc.get_threshold()
    assert tune("python") is None
    assert gc.get_threshold() == before


def test_the_worker_refuses_bad_thresholds_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="CLAIMSTREAM_GC_THRESHOLDS"):
        Settings.from_env({"CLAIMSTREAM_GC_THRESHOLDS": "fast"})


def test_the_worker_defaults_to_the_tuned_thresholds() -> None:
    assert Settings.from_env({}).gc_thresholds == DEFAULT
