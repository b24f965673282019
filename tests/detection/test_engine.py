"""Engine behaviour that holds for every rule: clock, shadow mode, commands switch, bounds."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import orjson
import pytest

from claimstream.detection.config import DetectionConfig
from claimstream.detection.decode import decode_event
from claimstream.detection.detector import Detector
from claimstream.detection.engine import Engine, StepResult
from claimstream.devtools.simulate import Simulator
from claimstream.model.config import RuleSettings
from claimstream.model.events import Event
from claimstream.model.timefmt import iso
from claimstream.rules import RULES
from claimstream.rules.base import Finding, Rule, State
from claimstream.rules.custom import pairs as custom_pairs
from claimstream.testing import DAY_H, FIXED_NOW, consultation, dispense, run, with_rule

SEED_CASE = [dispense("a", 0, inst="H1"), dispense("b", 2 * DAY_H, inst="H2")]


def test_detected_at_comes_from_the_injected_clock() -> None:
    (alert,) = run(SEED_CASE).alerts
    assert alert.detected_at == "2026-06-01T00:00:00+00:00"
    assert FIXED_NOW == 1780272000.0


def test_alert_ids_are_deterministic_across_runs() -> None:
    assert run(SEED_CASE).alerts[0].alert_id == run(SEED_CASE).alerts[0].alert_id
    assert run(SEED_CASE).commands[0].command_id == run(SEED_CASE).commands[0].command_id


def test_shadow_mode_sends_alerts_to_the_shadow_output_and_issues_no_command() -> None:
    result = run(SEED_CASE, with_rule("repeat_dispensing", mode="shadow"))
    assert result.alerts == [] and result.commands == []
    assert [a.rule for a in result.shadow_alerts] == ["repeat_dispensing"]


def test_a_rule_can_alert_without_issuing_commands() -> None:
    result = run(SEED_CASE, with_rule("repeat_dispensing", issue_commands=False))
    assert len(result.alerts) == 1 and result.commands == []


def test_a_disabled_rule_does_nothing() -> None:
    result = run(SEED_CASE, with_rule("repeat_dispensing", enabled=False))
    assert result.alerts == [] and result.commands == []


def test_alerts_record_the_config_version_that_produced_them() -> None:
    config = with_rule("repeat_dispensing", early_refill_tolerance=0.25)
    assert config.version == 2
    assert run(SEED_CASE, config).alerts[0].rule_version == 2


def _stream(days: float, patients: int) -> list[Event]:
    sim = Simulator(60_000, seed=3, patients=patients, span_days=days)
    events = [decode_event(raw) for raw in sim.events()]
    return [e for e in events if isinstance(e, Event)]


def test_state_stays_bounded_over_many_months() -> None:
    """A year of events over a fixed population: once the longest window (30 days) has
    passed, live keys and stored items stop growing, though events keep coming."""
    events = _stream(days=360, patients=1_500)
    det = Detector(DetectionConfig.default(), clock=lambda: FIXED_NOW, sweep_every=2_000)
    checkpoints: list[tuple[int, int]] = []
    for index, event in enumerate(events, start=1):
        det.process(event)
        if index % 5_000 == 0:
            checkpoints.append((len(det.states), det.stored_items()))
    warm = checkpoints[2:]  # after ~60 days of event time
    half = len(warm) // 2
    early, late = warm[:half], warm[half:]
    # Flat, not growing: the later half of the year holds no more than the earlier half
    # (with some slack for the saw-tooth between sweeps).
    assert max(k for k, _ in late) <= 1.2 * max(k for k, _ in early), checkpoints
    assert max(i for _, i in late) <= 1.2 * max(i for _, i in early), checkpoints
    items = [i for _, i in warm]
    # Without expiry the store would have grown with every event instead.
    assert items[-1] < len(events) / 4


def test_every_rule_key_of_a_finished_stream_expires() -> None:
    det = Detector(DetectionConfig.default(), clock=lambda: FIXED_NOW)
    for event in _stream(days=60, patients=300)[:20_000]:
        det.process(event)
    assert det.states
    det.watermark = (det.watermark or 0) + 400 * DAY_H * 3600  # a year and more later
    det.sweep()
    assert det.states == {} and det.stored_items() == 0


def test_lateness_is_judged_per_event_family_not_across_families() -> None:
    """Kafka orders a patient's events per topic only: a consultation fetched after a later
    dispensing is not late, while a dispensing behind the patient's latest one by more
    than the allowed lateness is."""
    later_dispense = dispense("d2", 10.0, inst="H2", drug="MET")
    result = run([later_dispense, consultation("c1", 0.0)])
    assert result.rejection is None
    result = run([later_dispense, dispense("d1", 0.0, inst="H1", drug="MET")])
    assert result.rejection is not None and result.rejection.reason == "late"
    assert "dispensing" in result.rejection.detail


class _Explodes(Rule[RuleSettings]):
    """A stateful rule that changes its state in place and then raises on events "boom*"."""

    name = "explodes"
    key_kind = "patient"
    event_types = frozenset({"dispense"})
    Settings = RuleSettings

    def on_event(self, state: State, event: Event) -> list[Finding]:
        state.setdefault("ids", []).append(event.event_id)
        state["n"] = state.get("n", 0) + 1
        if event.event_id.startswith("boom"):
            raise RuntimeError("a bug in a rule")
        return []

    def expire(self, state: State, cutoff: float) -> None:
        return None

    def size(self, state: State) -> int:
        return len(state.get("ids", ()))


@pytest.fixture
def explodes(monkeypatch: pytest.MonkeyPatch) -> Engine:
    """An engine whose last rule raises after every other rule has changed its state."""
    monkeypatch.setitem(RULES, "explodes", _Explodes)
    return Engine(DetectionConfig.default(), lambda: FIXED_NOW)


def test_a_step_that_raises_leaves_the_keys_state_as_it_was_before_the_event(
    explodes: Engine,
) -> None:
    state = explodes.new_state()
    explodes.step("patient", state, dispense("a", 0, inst="H1"))
    before = orjson.dumps(state)
    result = StepResult()
    with pytest.raises(RuntimeError, match="a bug in a rule"):
        explodes.step("patient", state, dispense("boom", 2 * DAY_H, inst="H2"), into=result)
    assert orjson.dumps(state) == before  # no dedup entry, no watermark, no half rule state
    assert result.alerts == [] and result.commands == [] and not result.changed


def test_a_step_that_raises_leaves_a_state_read_back_from_its_json_as_it_was(
    explodes: Engine,
) -> None:
    """A worker's states come from their JSON (rows as lists, not tuples): undone all the same."""
    state = explodes.new_state()
    explodes.step("patient", state, dispense("a", 0, inst="H1", drug="MET"))
    explodes.step("patient", state, dispense("b", DAY_H, inst="H2", drug="INS"))
    state = orjson.loads(orjson.dumps(state))
    before = orjson.dumps(state)
    with pytest.raises(RuntimeError, match="a bug in a rule"):
        explodes.step("patient", state, dispense("boom", 2 * DAY_H, inst="H3", drug="MET"))
    assert orjson.dumps(state) == before


def test_the_next_event_of_a_key_whose_event_raised_is_processed_normally(
    explodes: Engine,
) -> None:
    state = explodes.new_state()
    explodes.step("patient", state, dispense("a", 0, inst="H1"))
    with pytest.raises(RuntimeError):
        explodes.step("patient", state, dispense("boom", 1 * DAY_H, inst="H3"))
    result = explodes.step("patient", state, dispense("b", 2 * DAY_H, inst="H2"))
    assert [a.rule for a in result.alerts] == ["repeat_dispensing"]  # the seed case, as ever
    assert result.alerts[0].event_ids == ("a", "b")


class _PickyExplodes(_Explodes):
    """`_Explodes` behind a prefilter that refuses events whose id starts with "skip"."""

    name = "picky_explodes"
    calls: ClassVar[list[str]] = []

    def prefilter(self) -> tuple[Callable[[Event], bool], Callable[[State, Event], list[Finding]]]:
        return (lambda event: not event.event_id.startswith("skip")), self.on_accepted

    def on_accepted(self, state: State, event: Event) -> list[Finding]:
        _PickyExplodes.calls.append(event.event_id)
        return self.on_event(state, event)


@pytest.fixture
def picky(monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setitem(RULES, "picky_explodes", _PickyExplodes)
    monkeypatch.setattr(_PickyExplodes, "calls", [])
    return Engine(DetectionConfig.default(), lambda: FIXED_NOW)


def test_a_rule_whose_prefilter_refuses_an_event_is_not_called_and_gets_no_state(
    picky: Engine,
) -> None:
    state = picky.new_state()
    picky.step("patient", state, dispense("skip-1", 0, inst="H1"))
    assert _PickyExplodes.calls == []
    assert not any(key.startswith("picky_explodes@") for key in state["r"])
    picky.step("patient", state, dispense("a", DAY_H, inst="H1"))
    assert _PickyExplodes.calls == ["a"]


def test_a_prefiltered_rule_that_raises_is_undone_like_any_other(picky: Engine) -> None:
    state = picky.new_state()
    picky.step("patient", state, dispense("a", 0, inst="H1"))
    before = orjson.dumps(state)
    with pytest.raises(RuntimeError, match="a bug in a rule"):
        picky.step("patient", state, dispense("boom", 2 * DAY_H, inst="H2"))
    assert orjson.dumps(state) == before


def test_an_event_outside_the_plausible_range_is_refused_before_any_rule() -> None:
    late_century = decode_event({**SEED_CASE[0].raw, "occurred_at": "2150-01-01T00:00:00Z"})
    assert isinstance(late_century, Event)
    result = run([late_century])
    assert result.rejection is not None and result.rejection.reason == "implausible_timestamp"
    assert "2000-01-01T00:00:00+00:00 .. 2100-01-01T00:00:00+00:00" in result.rejection.detail


def test_detected_at_is_the_event_time_of_the_completing_event_without_a_clock() -> None:
    det = Detector(DetectionConfig.default(), clock=None)
    (alert,) = [a for e in SEED_CASE for a in det.process(e).alerts]
    assert alert.detected_at == iso(SEED_CASE[1].ts)


def test_an_alert_carries_the_findings_amount_and_the_rules_law() -> None:
    priced = [
        dispense("a", 0, inst="H1", unit_price=10.0),
        dispense("b", 2 * DAY_H, inst="H2", unit_price=12.5),
    ]
    config = with_rule("repeat_dispensing", legal_basis="《某地办法》", behaviour="重复配药")
    (alert,) = run(priced, config).alerts
    assert (alert.amount, alert.legal_basis, alert.behaviour) == (50.0, "《某地办法》", "重复配药")


def test_a_shadow_alert_carries_money_and_law_too() -> None:
    (alert,) = run(SEED_CASE, with_rule("repeat_dispensing", mode="shadow")).shadow_alerts
    assert alert.behaviour == "重复开药" and alert.legal_basis


def test_money_and_law_leave_the_alert_id_as_it_was() -> None:
    changed = with_rule("repeat_dispensing", legal_basis="《另一部办法》", on_check="reject")
    assert run(SEED_CASE, changed).alerts[0].alert_id == run(SEED_CASE).alerts[0].alert_id


#: custom rules whose state the engine copies shallowly (`Rule.shallow_state`): a duplicate
#: and two window rules sharing one row store, all over the same dispensings, and an absence
#: rule whose timers the engine asks after them
_SHALLOW = {
    "dup": {
        "template": "duplicate",
        "event_types": ["dispense"],
        "value": "event.drug_code",
        "window_days": 30,
    },
    "many": {
        "template": "window_count",
        "event_types": ["dispense"],
        "window_days": 30,
        "min_count": 10,
    },
    "more": {
        "template": "window_count",
        "event_types": ["dispense"],
        "window_days": 20,
        "min_count": 12,
    },
    "refill": {
        "template": "absence",
        "event_types": ["dispense"],
        "filter_a": "true",
        "filter_b": "true",
        "within_days": 60,
    },
}


def test_a_failed_step_puts_back_custom_rules_long_rows_copied_shallowly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = Engine(DetectionConfig.default().with_custom(_SHALLOW), None)
    state = engine.new_state()
    for i in range(40):  # more rows than a tuple holds: lists, which a careless insert changes
        engine.step("patient", state, dispense(f"d{i:02d}", i, inst="H1"))
    before = orjson.dumps(state)

    def explode(self: Rule[RuleSettings], state: State, cutoff: float) -> list[Finding]:
        raise RuntimeError("a bug in a rule")

    monkeypatch.setattr(custom_pairs.Absence, "due", explode)  # runs after the other rules
    with pytest.raises(RuntimeError, match="a bug in a rule"):
        engine.step("patient", state, dispense("boom", 39.5, inst="H1"))
    assert orjson.dumps(state) == before
