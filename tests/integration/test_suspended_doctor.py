"""A doctor suspended by the ladder may not bill: the worker follows the commands topic, so the
12th point's SUSPEND makes his next claim a `doctor_not_registered` alert in the stream and a
`reject` of the pre-settlement check, while his claims before the suspension stay clean.
Against the local broker, a worker and a real Redis.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.integration.test_check_api import call
from tests.integration.test_sanctions_stream import (
    ALERTS,
    SanctionsWorld,
    now,
    review_action,
    violation,
)

pytestmark = pytest.mark.integration
RULE = "doctor_not_registered"
DOCTOR = "DSUS1"


@pytest.fixture(scope="module")
def world(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SanctionsWorld]:
    log = tmp_path_factory.mktemp("suspended") / "worker.log"
    env = {
        f"CLAIMSTREAM_RULE__{RULE.upper()}__ENABLED": "true",
        # no registry of the test's doctors: only the suspensions are judged
        f"CLAIMSTREAM_RULE__{RULE.upper()}__CHECK_REGISTRATION": "false",
    }
    w = SanctionsWorld(redis_url, log_path=log, env=env).start()
    try:
        yield w
    finally:
        w.stop()


def claim(patient: str, at: Any, event_id: str) -> dict[str, Any]:
    """A benign outpatient claim of `DOCTOR` (no rule but `doctor_not_registered` can fire)."""
    return {
        "event_id": event_id,
        "event_type": "claim",
        "occurred_at": at.isoformat(),
        "patient_id": patient,
        "institution_id": "HSUS9",
        "doctor_id": DOCTOR,
        "department_id": "K01",
        "claim_id": f"C-{event_id}",
        "visit_type": "outpatient",
        "total_amount": 120.0,
        "fund_amount": 84.0,
        "items": [],
    }


def test_a_doctor_at_twelve_points_has_his_next_claim_refused(world: SanctionsWorld) -> None:
    t0 = now() - timedelta(minutes=10)
    patients = [f"PSUS{n}" for n in range(3)]
    for n, patient in enumerate(patients):  # three high-severity violations: 5 points each
        world.events(
            violation(t0 + timedelta(minutes=n), patient=patient, institution=f"HSUS{n}",
                      doctor=DOCTOR),
            claim(patient, t0 + timedelta(minutes=n, seconds=30), f"before-{n}"),
        )  # fmt: skip
    alerts = [world.alerts_for(patient, 1)[0] for patient in patients]
    world.wait_notices(f"doctor:{DOCTOR}", "warning.v1")  # the alerts are indexed by now
    for alert in alerts:
        world.actions(review_action(alert["alert_id"], "confirmed", now()))
    [suspend] = world.wait_commands(f"doctor:{DOCTOR}", "SUSPEND")

    world.events(claim("PSUS9", now(), "after-suspension"))
    found = world.wait(ALERTS, lambda got: [v for _, v in got if v["rule"] == RULE], timeout=60)
    refused = [v for _, v in found if v["rule"] == RULE]
    assert [a["event_ids"] for a in refused] == [["after-suspension"]]
    assert refused[0]["subject"] == {"kind": "doctor", "id": DOCTOR}
    assert refused[0]["details"]["reason"] == "billing_suspended", refused[0]["details"]

    assert world.worker is not None
    status, answer, _ = call(world.worker, "/v1/check", claim("PSUS8", now(), "checked"),
                             token=world.worker.token)  # fmt: skip
    assert status == 200, answer
    assert answer["decision"] == "reject"
    assert RULE in [v["rule"] for v in answer["violations"]], answer
    assert suspend["scope"] == {"kind": "doctor", "id": DOCTOR}
