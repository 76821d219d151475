"""Aggregation and presentation of benchmark runs. Pure.

A run is one measurement of one broker in one case: ``{"section", "case", "broker",
"rep", "metrics": {name: value}}``. ``aggregate`` turns the runs into rows: per
(section, case, metric) the median over the repetitions for each broker and the ratio
Brook / Kafka.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

# metric -> (unit shown, higher is better)
METRICS: dict[str, tuple[str, bool]] = {
    "MB/s": ("MB/s", True),
    "records/s": ("rec/s", True),
    "broker CPU s/GB": ("s/GB", False),
    "p50 ms": ("ms", False),
    "p99 ms": ("ms", False),
    "p99.9 ms": ("ms", False),
    "RSS idle MiB": ("MiB", False),
    "RSS peak MiB": ("MiB", False),
    "RSS peak MiB (sum)": ("MiB", False),
    "start to first produce s": ("s", False),
    "start to listening s": ("s", False),
    "storage format s": ("s", False),
    "achieved rec/s": ("rec/s", True),
}


@dataclass
class Row:
    section: str
    case: str
    metric: str
    brook: float | None
    kafka: float | None
    n_brook: int
    n_kafka: int
    brook_all: list[float]
    kafka_all: list[float]

    @property
    def ratio(self) -> float | None:
        if self.brook is None or self.kafka in (None, 0):
            return None
        return self.brook / self.kafka

    @property
    def higher_is_better(self) -> bool:
        return METRICS.get(self.metric, ("", True))[1]

    def to_json(self) -> dict:
        return {**asdict(self), "ratio": self.ratio, "higher_is_better": self.higher_is_better}


def median(values: list[float]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def aggregate(runs: list[dict]) -> list[Row]:
    order: list[tuple[str, str, str]] = []
    values: dict[tuple[str, str, str, str], list[float]] = {}
    for run in runs:
        for metric, value in run["metrics"].items():
            key = (run["section"], run["case"], metric)
            if key not in order:
                order.append(key)
            if value is not None:
                values.setdefault((*key, run["broker"]), []).append(value)
    rows = []
    for section, case, metric in order:
        b = values.get((section, case, metric, "brook"), [])
        k = values.get((section, case, metric, "kafka"), [])
        rows.append(Row(section, case, metric, median(b), median(k), len(b), len(k), b, k))
    return rows


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    a = abs(value)
    if a >= 100_000:
        return f"{value / 1000:,.0f}k"
    if a >= 1000:
        return f"{value:,.0f}"
    if a >= 100:
        return f"{value:.0f}"
    if a >= 10:
        return f"{value:.1f}"
    if a >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def table(rows: list[Row]) -> str:
    head = f"{'section':9} {'case':36} {'metric':26} {'Brook':>10} {'Kafka':>10} {'Brook/Kafka':>12}"
    lines = [head, "-" * len(head)]
    last = None
    for r in rows:
        label = (r.section, r.case)
        section, case = (r.section, r.case) if label != last else ("", "")
        last = label
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}x"
        better = "" if r.ratio is None else ("  (higher better)" if r.higher_is_better
                                             else "  (lower better)")
        spread = ""
        if r.n_brook > 1 or r.n_kafka > 1:
            spread = f"  n={r.n_brook}/{r.n_kafka}"
        lines.append(f"{section:9} {case:36} {r.metric:26} {fmt(r.brook):>10} {fmt(r.kafka):>10} "
                     f"{ratio:>12}{better}{spread}")
    return "\n".join(lines)
