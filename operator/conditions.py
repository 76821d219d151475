"""Status conditions (the metav1.Condition shape). Pure.

A condition keeps its lastTransitionTime while its status stays the same, so
`kubectl wait --for=condition=Ready` and Argo CD see real transitions only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

READY = "Ready"
WARNING = "Warning"
PAUSED = "ReconciliationPaused"

MAX_MESSAGE = 32768  # the CRD's maxLength for condition messages


@dataclass(frozen=True)
class Condition:
    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str = ""

    @classmethod
    def true(cls, type_: str, reason: str, message: str = "") -> Condition:
        return cls(type_, "True", reason, message)

    @classmethod
    def false(cls, type_: str, reason: str, message: str = "") -> Condition:
        return cls(type_, "False", reason, message)

    @classmethod
    def unknown(cls, type_: str, reason: str, message: str = "") -> Condition:
        return cls(type_, "Unknown", reason, message)


def now_rfc3339(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_conditions(
    conditions: Iterable[Condition],
    previous: Iterable[Mapping[str, Any]] | None,
    generation: int | None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Conditions as status dicts, keeping lastTransitionTime of unchanged statuses."""
    before = {c.get("type"): c for c in (previous or []) if isinstance(c, Mapping)}
    stamp = now_rfc3339(now)
    out = []
    for cond in conditions:
        old = before.get(cond.type)
        transition = stamp
        if old is not None and old.get("status") == cond.status and old.get("lastTransitionTime"):
            transition = old["lastTransitionTime"]
        item: dict[str, Any] = {
            "type": cond.type,
            "status": cond.status,
            "reason": cond.reason,
            "message": cond.message[:MAX_MESSAGE],
            "lastTransitionTime": transition,
        }
        if generation is not None:
            item["observedGeneration"] = generation
        out.append(item)
    return out


def find(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any] | None:
    for cond in conditions or []:
        if cond.get("type") == type_:
            return cond
    return None


def paused_status(body: Mapping[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """Status of a paused resource: what it was, plus ReconciliationPaused=True.

    observedGeneration stays where the last real reconcile left it, so tools that
    compare it with metadata.generation see that the latest spec is not applied.
    """
    previous = dict(body.get("status") or {})
    kept = [c for c in previous.get("conditions") or [] if c.get("type") != PAUSED]
    paused = render_conditions(
        [Condition.true(PAUSED, "Paused", 'annotation brook.dev/pause-reconciliation is "true"')],
        previous.get("conditions"),
        previous.get("observedGeneration"),
        now,
    )
    previous["conditions"] = kept + paused
    if "activity" in previous:  # a KafkaCluster's: nothing goes on while paused
        previous["activity"] = "Paused"
    return previous
