"""`owned_partitions`: the partitions of named topics this worker holds, or None when unknown."""

from __future__ import annotations

from types import SimpleNamespace

from faust.exceptions import ConsumerNotStarted
from faust.types import TP

from claimstream.stream.assignment import owned_partitions


class _Consumer:
    def __init__(self, tps: set[TP] | None) -> None:
        self.tps = tps

    def assignment(self) -> set[TP]:
        if self.tps is None:
            raise ConsumerNotStarted("not started")
        return self.tps


def test_only_the_named_topics_partitions_are_owned() -> None:
    app = SimpleNamespace(consumer=_Consumer({TP("a", 0), TP("a", 3), TP("b", 1)}))
    assert owned_partitions(app, "a") == {0, 3}
    assert owned_partitions(app, "a", "b") == {0, 1, 3}


def test_an_assignment_of_other_topics_owns_nothing() -> None:
    app = SimpleNamespace(consumer=_Consumer({TP("b", 1)}))
    assert owned_partitions(app, "a") == set()


def test_an_app_without_a_consumer_answers_unknown() -> None:
    assert owned_partitions(SimpleNamespace(), "a") is None


def test_a_consumer_not_started_answers_unknown() -> None:
    assert owned_partitions(SimpleNamespace(consumer=_Consumer(None)), "a") is None
