"""User-facing annotations on Brook resources. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from brook.operator.constants import DELETION_POLICY_ANNOTATION, PAUSE_ANNOTATION


def is_paused(body: Mapping[str, Any]) -> bool:
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(PAUSE_ANNOTATION, "")).strip().lower() == "true"


def deletion_policy(body: Mapping[str, Any]) -> str:
    """"delete" (default) or "orphan" (leave the topic in Kafka), from the annotation."""
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    value = str(annotations.get(DELETION_POLICY_ANNOTATION, "delete")).strip().lower()
    return "orphan" if value == "orphan" else "delete"
