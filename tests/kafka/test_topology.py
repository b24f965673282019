"""topics/topics.toml loads, is consistent with faust's naming, and its schemas hold."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from claimstream.kafka.topology import ROLES, TopologyError, load_topology, parse_retention
from claimstream.model.outputs import Alert, Command, DeadLetter, Scope, Subject

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "topics" / "schemas"


def test_default_file_is_the_repos() -> None:
    topology = load_topology()
    assert topology.source == REPO / "topics" / "topics.toml"
    assert topology.app_id == "claimstream"
    assert topology.default_partitions == 8


def test_the_checkouts_file_is_found_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLAIMSTREAM_TOPICS_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert load_topology().source == REPO / "topics" / "topics.toml"


def test_every_topic_the_brief_names_is_declared() -> None:
    names = set(load_topology().names())
    assert {
        "settlement.dispensing.v1",
        "settlement.consultations.v1",
        "settlement.stays.v1",
        "settlement.claims.v1",
        "claimstream.repartition.patient",
        "claimstream.repartition.doctor",
        "claimstream.repartition.institution",
        "claimstream.alerts.v1",
        "claimstream.commands.v1",
        "claimstream.dead-letter.v1",
        "claimstream-state-patient-changelog",
        "claimstream-state-doctor-changelog",
        "claimstream-state-institution-changelog",
        "claimstream-__assignor-__leader",
        "claimstream.actions.v1",
        "claimstream.audit.v1",
        "claimstream.sanctions.v1",
    } <= names
    assert len(names) == len(load_topology().topics)


@pytest.mark.parametrize("partitions", [None, 2, 12])
def test_copartitioned_topics_share_one_partition_count(partitions: int | None) -> None:
    topology = load_topology(partitions=partitions)
    groups = topology.copartition_groups()
    assert set(groups) == {
        "patient",
        "doctor",
        "institution",
        "trace_code",
        "sanctions",
        "subject",
        "peers",
    }
    for specs in groups.values():
        assert {s.partitions for s in specs} == {partitions or 8}
    inputs = {s.name for s in topology.by_role("input")}
    assert inputs <= {s.name for s in groups["patient"]}
    assert "claimstream.repartition.patient" in {s.name for s in groups["patient"]}


def test_override_leaves_topics_with_their_own_count_alone() -> None:
    topology = load_topology(partitions=3)
    assert topology.topic("claimstream-__assignor-__leader").partitions == 1
    assert topology.topic("claimstream.dead-letter.v1").partitions == 1


def test_changelogs_match_faust_names_and_are_compacted() -> None:
    topology = load_topology()
    for table, group in [
        ("state-patient", "patient"),
        ("state-doctor", "doctor"),
        ("state-institution", "institution"),
        ("alert-index", "sanctions"),
        ("audit-chain", "sanctions"),
        ("state-subject", "subject"),
    ]:
        spec = topology.changelog_topic(table)
        assert spec.name == f"claimstream-{table}-changelog"
        assert spec.copartition == group
        assert spec.kafka_config()["cleanup.policy"] == "compact"
    assert topology.leader_topic in topology.names()


def test_roles_keys_and_configs() -> None:
    topology = load_topology()
    assert {s.role for s in topology.topics} <= set(ROLES)
    for spec in topology.by_role("input"):
        assert spec.key == "patient_id"
        assert spec.kafka_config() == {"cleanup.policy": "delete", "retention.ms": "604800000"}


def test_referenced_schemas_exist() -> None:
    for spec in load_topology().topics:
        if spec.value_schema is not None:
            assert spec.value_schema.is_file(), f"{spec.name}: {spec.value_schema} missing"


@pytest.mark.parametrize(
    ("text", "ms"),
    [("7d", 604_800_000), ("12h", 43_200_000), ("30m", 1_800_000), ("500ms", 500), ("forever", -1)],
)
def test_parse_retention(text: str, ms: int) -> None:
    assert parse_retention(text) == ms


@pytest.mark.parametrize("bad", ["7 weeks", "", 7, "-1d"])
def test_parse_retention_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="retention"):
        parse_retention(bad)


BASE = """
partitions = 4
[faust]
app_id = "app"
"""


@pytest.mark.parametrize(
    ("topic", "error"),
    [
        ('name = "a"\nrole = "input"\nkey = "k"\ncopartition = "g"\npartitions = 3', "top-level"),
        ('name = "a"\nrole = "input"\nkey = "k"', "needs `partitions`"),
        ('name = "a"\nrole = "sink"\nkey = "k"\npartitions = 1', "role must be one of"),
        ('name = "a"\nrole = "input"\npartitions = 1', "missing 'key'"),
        (
            'name = "app-t-log"\nrole = "changelog"\ntable = "t"\nkey = "k"\ncopartition = "g"',
            "must be named 'app-t-changelog'",
        ),
        ('name = "a"\nrole = "input"\nkey = "k"\npartitions = 0', "positive integer"),
        ('name = "a"\nrole = "input"\nkey = "k"\npartitions = 1\ncleanup_policy = "x"', "cleanup"),
    ],
)
def test_inconsistent_files_are_refused(tmp_path: Path, topic: str, error: str) -> None:
    path = tmp_path / "topics.toml"
    path.write_text(BASE + "[[topic]]\n" + topic + "\n")
    with pytest.raises(TopologyError, match=error):
        load_topology(path)


def test_duplicate_topic_is_refused(tmp_path: Path) -> None:
    topic = '[[topic]]\nname = "a"\nrole = "output"\nkey = "k"\npartitions = 1\n'
    path = tmp_path / "topics.toml"
    path.write_text(BASE + topic + topic)
    with pytest.raises(TopologyError, match="declared twice"):
        load_topology(path)


def test_missing_file_is_a_topology_error(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match=r"nope\.toml"):
        load_topology(tmp_path / "nope.toml")


def test_env_var_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.toml"
    path.write_text(BASE + '[[topic]]\nname = "x"\nrole = "output"\nkey = "k"\npartitions = 2\n')
    monkeypatch.setenv("CLAIMSTREAM_TOPICS_FILE", str(path))
    assert load_topology().names() == ("x",)


# -- the output schemas accept what the core emits -----------------------------------------


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def test_alert_schema_accepts_core_alerts() -> None:
    alert = Alert(
        alert_id="alert-1",
        rule="repeat_dispensing",
        rule_version=1,
        severity="high",
        subject=Subject("patient", "P1"),
        patient_id="P1",
        institution_id="H1",
        doctor_id=None,
        department_id=None,
        event_ids=("e1", "e2"),
        occurred_at="2026-01-02T03:04:05+08:00",
        detected_at="2026-01-02T03:04:06Z",
        message="Same drug dispensed twice in 3 days.",
        details={"count": 2},
    )
    validator = _validator("alert.v1.json")
    validator.validate(alert.to_dict())
    bad = alert.to_dict() | {"severity": "urgent"}
    assert not validator.is_valid(bad)


@pytest.mark.parametrize("drug_code", [None, "D01"])
def test_command_schema_accepts_core_commands(drug_code: str | None) -> None:
    command = Command(
        command_id="cmd-1",
        action="FREEZE",
        scope=Scope("institution", "H1", drug_code),
        effective_from="2026-01-02T03:04:06Z",
        expires_at=None,
        reason="Readmissions within 24 h.",
        rule="readmission_24h",
        alert_ids=("alert-1",),
    )
    validator = _validator("command.v1.json")
    validator.validate(command.to_dict())
    assert not validator.is_valid(command.to_dict() | {"action": "DELETE"})


@pytest.mark.parametrize(
    ("raw", "origin"),
    [
        (b'{"x": 1', {"topic": "settlement.claims.v1", "partition": 3, "offset": 42}),
        (b"\xff\xfe", {"file": "events.jsonl", "line": 7}),
    ],
)
def test_dead_letter_schema_accepts_core_dead_letters(
    raw: bytes, origin: dict[str, object]
) -> None:
    record = DeadLetter("not_json", "The input is not JSON.", origin, raw).to_dict()
    validator = _validator("dead-letter.v1.json")
    validator.validate(record)
    assert not validator.is_valid(record | {"origin": {"topic": "t"}})
