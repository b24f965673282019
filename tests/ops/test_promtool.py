"""The alerting rules are valid, and every alert fires and stays quiet in promtool's unit tests."""

from __future__ import annotations

import subprocess

from tests.ops.support import DEPLOY, RULES_FILE, RULES_TESTS, load_yaml, require_binary


def _alert_names() -> list[str]:
    doc = load_yaml(RULES_FILE)
    return [rule["alert"] for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def test_promtool_check_rules() -> None:
    promtool = require_binary("promtool")
    done = subprocess.run(
        [promtool, "check", "rules", str(RULES_FILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_test_rules() -> None:
    promtool = require_binary("promtool")
    done = subprocess.run(
        [promtool, "test", "rules", str(RULES_TESTS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=RULES_TESTS.parent,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    alerts = _alert_names()
    assert len(alerts) >= 7
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in load_yaml(RULES_TESTS)["tests"]:
        for check in case.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert set(alerts) - fired == set(), "alerts never shown firing"
    assert set(alerts) - quiet == set(), "alerts never shown quiet"
    assert (fired | quiet) <= set(alerts), "tests name alerts that do not exist"


def test_every_alert_is_labelled_and_documented() -> None:
    doc = load_yaml(RULES_FILE)
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            name = rule["alert"]
            assert rule["labels"]["severity"] in ("critical", "warning"), name
            assert rule["labels"]["team"] in ("ops", "fund-supervision"), name
            assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), name
            assert rule["annotations"]["runbook_url"] == f"docs/operations.md#{name.lower()}", name
    assert (DEPLOY / "prometheus" / "prometheus.yml").is_file()
