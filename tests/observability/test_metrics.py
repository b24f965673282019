"""Metrics: every label is bounded, whatever the alerts, commands and events carry."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from claimstream.model.outputs import Alert, Command, Scope, Subject
from claimstream.observability.metrics import LABEL_NAMES, MAX_RULE_LABELS, OTHER, Metrics
from claimstream.rules import RULES

PATIENT = "P-330102199001011234"
DOCTOR = "D-0042-ZHANG"
INSTITUTION = "H-3301-0007"
DRUG = "XC01AA05"
IDS = (PATIENT, DOCTOR, INSTITUTION, DRUG)


def alert(
    rule: str, severity: str = "high", kind: str = "patient", subject: str = PATIENT
) -> Alert:
    return Alert(
        alert_id="alert-0123456789abcdef01234567",
        rule=rule,
        rule_version=1,
        severity=severity,  # type: ignore[arg-type]
        subject=Subject(kind, subject),  # type: ignore[arg-type]
        patient_id=PATIENT,
        institution_id=INSTITUTION,
        doctor_id=DOCTOR,
        department_id="DEP-7",
        event_ids=("e-1", "e-2"),
        occurred_at="2024-05-01T08:00:00+08:00",
        detected_at="2024-05-01T08:00:01+08:00",
        message=f"patient {PATIENT} got {DRUG} twice from {DOCTOR} at {INSTITUTION}",
        details={"drug_code": DRUG},
    )


def command(action: str, kind: str, ident: str) -> Command:
    return Command(
        command_id="cmd-0123456789abcdef01234567",
        action=action,  # type: ignore[arg-type]
        scope=Scope(kind, ident, DRUG),  # type: ignore[arg-type]
        effective_from="2024-05-01T08:00:01+08:00",
        expires_at=None,
        reason=f"repeat dispensing of {DRUG} to {PATIENT}",
        rule="repeat_dispensing",
        alert_ids=("alert-0123456789abcdef01234567",),
    )


def samples(registry: CollectorRegistry) -> list[tuple[str, dict[str, str], float]]:
    body = generate_latest(registry)
    return [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    ]


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    got = registry.get_sample_value(name, labels)
    return 0.0 if got is None else got


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def feed_everything(m: Metrics) -> None:
    """Every method, with ids wherever a caller could wrongly pass one."""
    m.worker_started(app_id="claimstream", store="rocksdb:///var/lib/claimstream", config_version=3)
    for rule in (*RULES, PATIENT, DOCTOR):
        for severity in ("info", "critical", INSTITUTION):
            for mode in ("enforce", "shadow", DOCTOR):
                m.alert_emitted(alert(rule, severity), mode, arrived_at=time.time() - 0.2)
    m.alert_emitted(alert("repeat_dispensing", kind="institution", subject=INSTITUTION), "enforce")
    for action in ("FREEZE", "UNFREEZE", "SUSPEND"):
        for kind, ident in (("patient", PATIENT), ("doctor", DOCTOR), ("institution", INSTITUTION)):
            m.command_issued(command(action, kind, ident))
    m.command_issued(command(PATIENT, INSTITUTION, DOCTOR))
    for topic in ("settlement.dispensing.v1", PATIENT, f"settlement.{DOCTOR}"):
        for event_type in ("dispense", "claim", "unknown", INSTITUTION):
            m.event_consumed(topic, event_type)
    for reason in ("not_json", "late", PATIENT):
        m.dead_letter(reason)
    m.batch(100)
    for kind in ("patient", "institution", DOCTOR):
        m.set_active_freezes(kind, 2)
    for rule in (*RULES, PATIENT):
        m.set_state_keys(rule, 10)
    m.set_consumer_lag("settlement.claims.v1", 3, 12)
    m.set_consumer_lag(INSTITUTION, 10**9, 5)
    m.set_assigned_partitions("settlement.claims.v1", 4)
    m.set_assigned_partitions(PATIENT, 4)
    for verdict in ("confirmed", "false_positive", PATIENT):
        m.review_recorded("readmission_24h", verdict)
        m.review_recorded(DOCTOR, verdict)
    m.set_reviewed_alerts({"readmission_24h": (2, 3), DOCTOR: (1, 1)})
    for notice in ("warning.v1", "grade-change.v1", PATIENT):
        m.sanction_notice(notice)
    m.dead_letter("unknown_alert")
    for reason in ("unsigned_action", "bad_signature", PATIENT):
        m.action_refused(reason)
    for rule in ("repeat_dispensing", PATIENT):
        for source in ("stream", "check", INSTITUTION):
            m.violation_amount(rule, 120.5, source)


def test_no_id_ever_becomes_a_label_value(registry: CollectorRegistry) -> None:
    feed_everything(Metrics(registry))
    seen = samples(registry)
    assert seen
    for name, labels, _ in seen:
        for label, label_value in labels.items():
            for ident in IDS:
                assert ident not in label_value, f"{name}{{{label}={label_value!r}}} holds an id"


def test_every_label_name_is_allowed(registry: CollectorRegistry) -> None:
    feed_everything(Metrics(registry))
    for name, labels, _ in samples(registry):
        if not name.startswith("claimstream_"):
            continue  # process_* and python_info come from prometheus_client itself
        extra = set(labels) - LABEL_NAMES - {"le"}
        assert not extra, f"{name} has unexpected labels {extra}"


def test_label_values_come_from_closed_sets(registry: CollectorRegistry) -> None:
    feed_everything(Metrics(registry))
    series = {name for name, _, _ in samples(registry) if name.startswith("claimstream_")}
    assert len(series) > 10
    values: dict[str, set[str]] = {}
    for name, labels, _ in samples(registry):
        if name.startswith("claimstream_"):
            for label, label_value in labels.items():
                values.setdefault(label, set()).add(label_value)
    assert values["rule"] <= {*RULES, OTHER}
    assert values["severity"] <= {"info", "warning", "high", "critical", OTHER}
    assert values["mode"] <= {"enforce", "shadow", OTHER}
    assert values["action"] <= {"FREEZE", "UNFREEZE", "SUSPEND", OTHER}
    assert values["scope_kind"] <= {"patient", "doctor", "institution", OTHER}
    assert values["verdict"] <= {"confirmed", "false_positive", OTHER}
    assert values["notice"] <= {"warning.v1", "grade-change.v1", "doctor-points.v1", OTHER}
    assert values["partition"] <= {str(p) for p in range(4096)} | {OTHER}
    assert values["store"] == {"rocksdb"}


def test_counts_and_latencies(registry: CollectorRegistry) -> None:
    m = Metrics(registry, rules=["repeat_dispensing"], topics=["settlement.claims.v1"])
    a = alert("repeat_dispensing")
    emitted = 1714521600.0  # 2024-05-01T00:00:00Z == 08:00+08:00, the alert's occurred_at
    m.alert_emitted(a, "shadow", emitted_at=emitted + 2.0, arrived_at=emitted + 1.9)
    assert value(registry, "claimstream_alerts_total", rule="repeat_dispensing",
                 severity="high", mode="shadow") == 1  # fmt: skip
    assert value(registry, "claimstream_detection_latency_seconds_sum",
                 rule="repeat_dispensing") == pytest.approx(2.0)  # fmt: skip
    assert value(registry, "claimstream_processing_latency_seconds_sum",
                 rule="repeat_dispensing") == pytest.approx(0.1)  # fmt: skip
    m.command_issued(command("SUSPEND", "institution", INSTITUTION))
    assert value(registry, "claimstream_commands_total", action="SUSPEND",
                 scope_kind="institution") == 1  # fmt: skip
    m.event_consumed("settlement.claims.v1", "claim", n=5)
    assert value(registry, "claimstream_events_consumed_total", topic="settlement.claims.v1",
                 event_type="claim") == 5  # fmt: skip
    m.set_consumer_lag("settlement.claims.v1", 2, -3)
    assert value(registry, "claimstream_consumer_lag", topic="settlement.claims.v1",
                 partition="2") == 0  # fmt: skip


def test_bounded_series_exist_at_zero_from_the_start(registry: CollectorRegistry) -> None:
    """rate()/increase() need the series before the first increment, so they start at 0."""
    Metrics(registry)
    assert (
        registry.get_sample_value(
            "claimstream_commands_total", {"action": "SUSPEND", "scope_kind": "institution"}
        )
        == 0
    )
    assert registry.get_sample_value("claimstream_dead_letters_total", {"reason": "late"}) == 0
    for rule in RULES:
        assert (
            registry.get_sample_value(
                "claimstream_alerts_total",
                {"rule": rule, "severity": "critical", "mode": "enforce"},
            )
            == 0
        )
        assert (
            registry.get_sample_value("claimstream_detection_latency_seconds_count", {"rule": rule})
            == 0
        )
    last = registry.get_sample_value("claimstream_last_event_consumed_timestamp_seconds")
    assert last is not None and last > 0


def test_fresh_registries_do_not_collide() -> None:
    Metrics(CollectorRegistry())
    Metrics(CollectorRegistry())


class _TP:
    def __init__(self, topic: str, partition: int) -> None:
        self.topic, self.partition = topic, partition

    def __hash__(self) -> int:
        return hash((self.topic, self.partition))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _TP) and (self.topic, self.partition) == (
            other.topic,
            other.partition,
        )


class _Consumer:
    def __init__(self, offsets: dict[tuple[str, int], tuple[int | None, int | None]]) -> None:
        self.offsets = offsets

    def assignment(self) -> set[_TP]:
        return {_TP(t, p) for t, p in self.offsets}

    def highwater(self, tp: _TP) -> int | None:
        return self.offsets[tp.topic, tp.partition][0]

    async def position(self, tp: _TP) -> int | None:
        _, pos = self.offsets[tp.topic, tp.partition]
        if pos == -1:
            raise RuntimeError("partition revoked")
        return pos


async def test_sample_consumer_sets_lag_and_forgets_revoked_partitions(
    registry: CollectorRegistry,
) -> None:
    m = Metrics(registry)
    claims, stays = "settlement.claims.v1", "settlement.stays.v1"
    await m.sample_consumer(
        _Consumer({(claims, 0): (100, 40), (claims, 1): (5, 5), (stays, 2): (None, None)})
    )
    assert value(registry, "claimstream_consumer_lag", topic=claims, partition="0") == 60
    assert value(registry, "claimstream_consumer_lag", topic=claims, partition="1") == 0
    # nothing fetched yet: no sample rather than a wrong one
    assert (
        registry.get_sample_value("claimstream_consumer_lag", {"topic": stays, "partition": "2"})
        is None
    )
    assert value(registry, "claimstream_assigned_partitions", topic=claims) == 2
    # rebalance: partition 0 went to another worker, partition 1 is being revoked
    await m.sample_consumer(_Consumer({(claims, 1): (9, -1), (stays, 2): (30, 10)}))
    assert (
        registry.get_sample_value("claimstream_consumer_lag", {"topic": claims, "partition": "0"})
        is None
    )
    assert value(registry, "claimstream_consumer_lag", topic=stays, partition="2") == 20
    assert value(registry, "claimstream_assigned_partitions", topic=claims) == 1


def test_input_topics_start_at_zero_for_every_event_type(registry: CollectorRegistry) -> None:
    Metrics(registry)
    for event_type in ("dispense", "consultation", "admission", "discharge", "claim", "unknown"):
        labels = {"topic": "settlement.dispensing.v1", "event_type": event_type}
        assert registry.get_sample_value("claimstream_events_consumed_total", labels) == 0


def test_reviewed_alerts_gauge_and_review_counter(registry: CollectorRegistry) -> None:
    m = Metrics(registry, rules=["repeat_dispensing"], topics=["settlement.claims.v1"])
    m.review_recorded("repeat_dispensing", "confirmed")
    m.review_recorded("repeat_dispensing", "false_positive")
    m.set_reviewed_alerts({"repeat_dispensing": (3, 4), "unknown_rule": (0, 2)})
    gauge = "claimstream_reviewed_alerts"
    assert value(registry, gauge, rule="repeat_dispensing", verdict="confirmed") == 3
    assert value(registry, gauge, rule="repeat_dispensing", verdict="false_positive") == 1
    assert value(registry, gauge, rule=OTHER, verdict="false_positive") == 2
    counter = "claimstream_reviews_total"
    assert value(registry, counter, rule="repeat_dispensing", verdict="confirmed") == 1
    assert value(registry, counter, rule="repeat_dispensing", verdict="false_positive") == 1
    m.set_reviewed_alerts({})  # the partitions moved away: back to zero, not stale
    assert value(registry, gauge, rule="repeat_dispensing", verdict="confirmed") == 0
    m.sanction_notice("warning.v1")
    assert value(registry, "claimstream_sanction_notices_total", notice="warning.v1") == 1


def test_refused_actions_are_counted_by_a_bounded_reason(registry: CollectorRegistry) -> None:
    m = Metrics(registry, rules=["repeat_dispensing"], topics=["settlement.claims.v1"])
    counter = "claimstream_refused_actions_total"
    assert registry.get_sample_value(counter, {"reason": "bad_signature"}) == 0
    m.action_refused("unsigned_action")
    m.action_refused(f"unsigned {PATIENT}")
    assert value(registry, counter, reason="unsigned_action") == 1
    assert value(registry, counter, reason=OTHER) == 1


def test_violation_amounts_add_up_per_rule_and_source(registry: CollectorRegistry) -> None:
    m = Metrics(registry, rules=["repeat_dispensing", "duplicate_exam"])
    m.violation_amount("repeat_dispensing", 226.5)
    m.violation_amount("repeat_dispensing", 73.5, "stream")
    m.violation_amount("repeat_dispensing", 40.0, "check")
    name = "claimstream_violation_amount_yuan_total"
    assert value(registry, name, rule="repeat_dispensing", source="stream") == 300.0
    assert value(registry, name, rule="repeat_dispensing", source="check") == 40.0
    assert value(registry, name, rule="duplicate_exam", source="stream") == 0.0


@pytest.mark.parametrize("amount", [None, 0.0, -5.0, float("nan"), float("inf")])
def test_a_violation_without_a_usable_amount_adds_nothing(
    registry: CollectorRegistry, amount: float | None
) -> None:
    m = Metrics(registry, rules=["excess_quantity"])
    m.violation_amount("excess_quantity", amount)
    assert value(registry, "claimstream_violation_amount_yuan_total",
                 rule="excess_quantity", source="stream") == 0.0  # fmt: skip


def test_violation_amount_sources_are_a_closed_set(registry: CollectorRegistry) -> None:
    feed_everything(Metrics(registry))
    sources = {
        labels["source"]
        for name, labels, _ in samples(registry)
        if name == "claimstream_violation_amount_yuan_total"
    }
    assert sources == {"stream", "check", OTHER}


def test_violation_amount_series_exist_at_zero_for_every_rule(registry: CollectorRegistry) -> None:
    Metrics(registry)
    for rule in RULES:
        for source in ("stream", "check"):
            got = registry.get_sample_value(
                "claimstream_violation_amount_yuan_total", {"rule": rule, "source": source}
            )
            assert got == 0, (rule, source)


def test_checks_and_their_overrides_are_counted_by_bounded_labels(
    registry: CollectorRegistry,
) -> None:
    m = Metrics(registry)
    assert value(registry, "claimstream_checks_total", decision="reject") == 0
    assert value(registry, "claimstream_check_overrides_total", rule="repeat_dispensing",
                 handling="continued") == 0  # fmt: skip
    for decision in ("pass", "hold", PATIENT):
        m.check_answered(decision)
    for rule, handling in (("repeat_dispensing", "continued"), (DOCTOR, INSTITUTION)):
        m.check_override(rule, handling)
    assert value(registry, "claimstream_checks_total", decision="hold") == 1
    assert value(registry, "claimstream_checks_total", decision=OTHER) == 1
    assert value(registry, "claimstream_check_overrides_total", rule="repeat_dispensing",
                 handling="continued") == 1  # fmt: skip
    assert value(registry, "claimstream_check_overrides_total", rule=OTHER, handling=OTHER) == 1
    for name, labels, _ in samples(registry):
        if name.startswith("claimstream_check"):
            assert set(labels) <= LABEL_NAMES
            assert not any(ident in v for v in labels.values() for ident in IDS)


def test_a_custom_rule_of_the_configuration_in_force_gets_its_own_label(
    registry: CollectorRegistry,
) -> None:
    m = Metrics(registry, rules=["repeat_dispensing"])
    m.violation_amount("high_cost_claims", 10.0)
    m.name_rules(["high_cost_claims"])
    m.violation_amount("high_cost_claims", 5.0)
    name = "claimstream_violation_amount_yuan_total"
    assert value(registry, name, rule=OTHER, source="stream") == 10.0
    assert value(registry, name, rule="high_cost_claims", source="stream") == 5.0


def test_rule_labels_stay_bounded_whatever_the_configuration_names(
    registry: CollectorRegistry,
) -> None:
    m = Metrics(registry, rules=["repeat_dispensing"])
    m.name_rules([f"rule_{i:04d}" for i in range(1000)])
    m.name_rules([f"{PATIENT} rule", "Not-A-Name"])
    assert len(m.rules) == MAX_RULE_LABELS
    assert f"{PATIENT} rule" not in m.rules and "Not-A-Name" not in m.rules


def test_case_metrics_carry_steps_types_and_stages_never_ids(registry: CollectorRegistry) -> None:
    m = Metrics(registry)
    m.case_action("case_advance", "applied")
    m.case_action("case-4711", "applied")  # not a type: counted as other
    m.case_money("recovered", 120.5)
    m.set_cases_overdue({"appeal": 2})
    assert value(registry, "claimstream_case_actions_total", case_action="case_advance",
                 result="applied") == 1  # fmt: skip
    assert value(registry, "claimstream_case_actions_total", case_action=OTHER,
                 result="applied") == 1  # fmt: skip
    assert value(registry, "claimstream_case_money_yuan_total", stage="recovered") == 120.5
    assert value(registry, "claimstream_cases_overdue", step="appeal") == 2
    assert value(registry, "claimstream_cases_overdue", step="first_review") == 0
