"""A small credentials registry for the tests of the rules that consult one."""

from __future__ import annotations

import json
from pathlib import Path

from claimstream.detection.config import DetectionConfig

AGREEMENTS = """\
institution_id,name,type,valid_from,valid_to,services,categories,online_conditions
H1,hospital,定点医疗机构,2026-01-01,2026-03-31,,,
H1,hospital renewed,定点医疗机构,2026-04-01,,,,
H2,hospital not yet,定点医疗机构,2026-03-05,,,,
H3,hospital lapsed,定点医疗机构,2025-01-01,2026-02-28,,,
H3,hospital back,定点医疗机构,2026-03-10,,,,
Y1,pharmacy,定点零售药店,2026-01-01,2026-03-02,,,
IH1,internet hospital,互联网医院,2026-01-01,,,,I10|E11
IH2,internet hospital any condition,互联网医院,2026-01-01,,,,
"""
REGISTRATIONS = """\
doctor_id,institution_id,valid_from,valid_to,status
D1,H1,2026-01-01,2026-03-02,active
D1,Y1,2026-01-01,,active
D2,H1,2026-03-05,,active
D3,H1,2026-01-01,,suspended
D4,H1,2026-01-01,,revoked
D5,H1,2026-01-01,2026-02-28,active
D5,H1,2026-03-10,,active
D6,IH1,2026-01-01,,active
D6,H1,2026-01-01,,active
"""


def registry(
    directory: Path, agreements: str = AGREEMENTS, registrations: str = REGISTRATIONS
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    manifest = {"format": "claimstream-reference/1", "version": "test-1"}
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (directory / "agreements.csv").write_text(agreements, encoding="utf-8")
    (directory / "registrations.csv").write_text(registrations, encoding="utf-8")
    return directory


def config(directory: Path, rule: str, **changes: str) -> DetectionConfig:
    """Defaults on the registry in `directory`, with `rule` enabled (and `changes`)."""
    base = DetectionConfig.default(reference_data_path=str(registry(directory)))
    return base.with_rule_changes(rule, {"enabled": "true", **changes})
