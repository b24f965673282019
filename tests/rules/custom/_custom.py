"""Builders shared by the custom rules' tests: a configuration with one custom rule."""

from __future__ import annotations

from typing import Any

from claimstream.detection.config import DetectionConfig

RULE = "custom_rule"


def config(
    template: str, *, lists: dict[str, list[str]] | None = None, **settings: Any
) -> DetectionConfig:
    """The defaults plus one custom rule `custom_rule`, in enforce mode unless said."""
    settings.setdefault("mode", "enforce")
    table = {"template": template, **settings}
    return DetectionConfig.default().with_custom({RULE: table}, lists)
