"""Observations, their normal form, and the comparison of Brook against Kafka. Pure.

An Observation is one observable result of one request made by one client against one
broker: (client, scenario, key) -> value, with the request written out so a difference
can be reproduced. Values are normalised to JSON data (bytes become short readable
text, sets sorted lists, exceptions "error NAME") so equal behaviour compares equal.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import asdict, dataclass, field
from typing import Any

UNSUPPORTED = "unsupported by client"


@dataclass(frozen=True)
class Observation:
    client: str
    scenario: str
    key: str
    value: Any
    request: str = ""

    @property
    def ident(self) -> tuple[str, str, str]:
        return (self.client, self.scenario, self.key)


def norm(value: Any) -> Any:
    """JSON-able normal form: bytes -> text, sets -> sorted lists, tuples -> lists."""
    if isinstance(value, bytes | bytearray):
        return show_bytes(bytes(value))
    if isinstance(value, dict):
        return {str(k): norm(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, set | frozenset):
        return sorted(norm(v) for v in value)
    if isinstance(value, list | tuple):
        return [norm(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def show_bytes(data: bytes | None, limit: int = 40) -> str | None:
    if data is None:
        return None
    if len(data) > limit:
        return f"<{len(data)} bytes>"
    return "b" + repr(data)[1:]


def outcome(exc: BaseException) -> str:
    """How a failed call is recorded: Kafka's error name when the broker refused."""
    from tests.clients import KafkaClientError, Unsupported
    if isinstance(exc, Unsupported):
        return UNSUPPORTED
    if isinstance(exc, KafkaClientError):
        return f"error {exc.name}"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, AssertionError):
        return f"mismatch: {str(exc).splitlines()[0] if str(exc) else 'assertion'}"
    text = " ".join(str(exc).split())[:120]
    text = re.sub(r"(\d+\.\d+\.\d+\.\d+):\d+", r"\1:<port>", text)
    return f"client exception {type(exc).__name__}" + (f": {text}" if text else "")


# ---------------------------------------------------------------- comparison

@dataclass
class Row:
    client: str
    scenario: str
    key: str
    brook: Any
    kafka: Any
    request: str
    verdict: str  # "same" | "bug" | "choice" | "skipped"
    note: str = ""

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Choice:
    """A documented, deliberate difference. Matches rows by fnmatch patterns on scenario
    and key (and optionally client), and optionally by the two values."""
    scenario: str
    key: str
    reason: str
    client: str = "*"
    brook: Any = field(default=None)  # None: any value
    kafka: Any = field(default=None)
    #: if set, the two values may differ only in these keys (dict values)
    only_fields: frozenset[str] | None = None

    def matches(self, row: Row) -> bool:
        return (fnmatch.fnmatchcase(row.scenario, self.scenario)
                and fnmatch.fnmatchcase(row.key, self.key)
                and fnmatch.fnmatchcase(row.client, self.client)
                and (self.brook is None or self.brook == row.brook)
                and (self.kafka is None or self.kafka == row.kafka)
                and (self.only_fields is None
                     or differing_fields(row.brook, row.kafka) <= self.only_fields))


def differing_fields(a: Any, b: Any) -> set[str]:
    """Keys whose values differ between two dicts; {"<whole value>"} if not both dicts."""
    if not isinstance(a, dict) or not isinstance(b, dict):
        return {"<whole value>"}
    return {k for k in set(a) | set(b) if a.get(k, MISSING) != b.get(k, MISSING)}


MISSING = "<not observed>"


def compare(brook: list[Observation], kafka: list[Observation],
            choices: list[Choice] = (), causes: list[Choice] = ()) -> list[Row]:
    """Pair observations by (client, scenario, key); classify each pair. A difference is a
    "choice" if a Choice matches it, else a "bug"; a bug matched by one of `causes` (known
    bugs, same matching rules) carries that cause's title in `note`."""
    b = {o.ident: o for o in brook}
    k = {o.ident: o for o in kafka}
    order = list(dict.fromkeys([o.ident for o in kafka] + [o.ident for o in brook]))
    rows = []
    for ident in order:
        ob, ok = b.get(ident), k.get(ident)
        vb = ob.value if ob else MISSING
        vk = ok.value if ok else MISSING
        request = (ok or ob).request
        row = Row(*ident, brook=vb, kafka=vk, request=request, verdict="same")
        if vb == vk:
            row.verdict = "skipped" if vk == UNSUPPORTED else "same"
        else:
            choice = next((c for c in choices if c.matches(row)), None)
            if choice is not None:
                row.verdict, row.note = "choice", choice.reason
            else:
                row.verdict = "bug"
                cause = next((c for c in causes if c.matches(row)), None)
                row.note = cause.reason if cause else ""
        rows.append(row)
    return rows


def collapse(rows: list[Row]) -> list[dict]:
    """Differences grouped across clients: one entry per (scenario, key, brook, kafka)."""
    groups: dict[tuple, dict] = {}
    for r in rows:
        if r.verdict not in ("bug", "choice"):
            continue
        ident = (r.scenario, r.key, repr(r.brook), repr(r.kafka))
        g = groups.setdefault(ident, {"scenario": r.scenario, "key": r.key, "brook": r.brook,
                                      "kafka": r.kafka, "verdict": r.verdict, "note": r.note,
                                      "request": r.request, "clients": []})
        g["clients"].append(r.client)
    return list(groups.values())


def summary(rows: list[Row]) -> dict[str, dict[str, dict[str, int]]]:
    """scenario family ("admin", "errors", ...) -> client -> verdict -> count."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for r in rows:
        fam = r.scenario.split("/", 1)[0]
        cell = out.setdefault(fam, {}).setdefault(r.client, {})
        cell[r.verdict] = cell.get(r.verdict, 0) + 1
    return out
