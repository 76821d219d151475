"""Smoke tests of the side-by-side harness in bench/ (compatibility suite and benchmarks).

The pure parts (normalisation, comparison, declared choices, report and table
rendering, Kafka tool output parsing) run always. One slow test runs a slice of the real
compatibility suite against both brokers (`pytest -m slow tests/component/test_compat_suite.py`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.compat import cgtool, report  # noqa: E402
from bench.compat.choices import CHOICES  # noqa: E402
from bench.compat.model import Choice, Observation, collapse, compare, norm, outcome  # noqa: E402
from bench.stats import aggregate, table  # noqa: E402
from bench.workloads import parse_consumer_perf, parse_producer_perf  # noqa: E402
from tests.clients import KafkaClientError, Unsupported  # noqa: E402


def obs(client, key, value, scenario="s"):
    return Observation(client, scenario, key, norm(value), "req")


def test_norm_makes_values_comparable():
    assert norm({"b": b"\x00x", 2: {3, 1}}) == {"2": [1, 3], "b": "b'\\x00x'"}
    assert norm(b"x" * 100) == "<100 bytes>"
    assert outcome(KafkaClientError("UNKNOWN_TOPIC_OR_PART", 3)) == "error UNKNOWN_TOPIC_OR_PARTITION"
    assert outcome(Unsupported("no")) == "unsupported by client"


def test_compare_classifies_same_bug_choice_and_missing():
    brook = [obs("ck", "a", 1), obs("ck", "b", {"x": 1, "ro": True}), obs("ck", "c", "error X")]
    kafka = [obs("ck", "a", 1), obs("ck", "b", {"x": 1, "ro": False}), obs("ck", "c", "ok"),
             obs("ck", "d", 5)]
    choices = [Choice("s", "b", "static", only_fields=frozenset({"ro"}))]
    rows = {r.key: r for r in compare(brook, kafka, choices)}
    assert rows["a"].verdict == "same"
    assert rows["b"].verdict == "choice" and rows["b"].note == "static"
    assert rows["c"].verdict == "bug"
    assert rows["d"].verdict == "bug" and rows["d"].brook == "<not observed>"
    # the same difference seen by two clients is reported once
    rows2 = compare([obs("ck", "c", 1), obs("kp", "c", 1)], [obs("ck", "c", 2), obs("kp", "c", 2)])
    (d,) = collapse(rows2)
    assert d["clients"] == ["ck", "kp"]


def test_choice_with_only_fields_does_not_hide_other_differences():
    row = compare([obs("ck", "b", {"x": 2, "ro": True})], [obs("ck", "b", {"x": 1, "ro": False})],
                  [Choice("s", "b", "static", only_fields=frozenset({"ro"}))])[0]
    assert row.verdict == "bug"


def test_declared_choices_have_reasons():
    assert CHOICES and all(len(c.reason) > 40 for c in CHOICES)


def test_reports_render():
    rows = compare([obs("ck", "a", 1, "errors"), obs("ck", "b", 2, "admin/x")],
                   [obs("ck", "a", 1, "errors"), obs("ck", "b", 3, "admin/x")])
    text = report.terminal(rows, ["ck"])
    assert "1 bugs" in text and "admin/x" in text
    md = report.markdown(rows, {"clients": ["ck"], "generated": "now", "command": "c", "brook": "b",
                                "kafka": "4", "parity_config": {}, "machine": {}, "seconds": 1})
    assert "### B1. Not yet analysed" in md and "**admin/x / b**" in md
    assert "| errors | 1 same |" in md


def test_consumer_groups_tool_output_is_normalised():
    out = """
Consumer group 'g' has no active members.

GROUP           TOPIC           PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG             CONSUMER-ID     HOST            CLIENT-ID
g               t               0          15              20              5               -               -               -
"""
    parsed = cgtool.parse(out)
    assert parsed["notes"] == ["Consumer group 'g' has no active members."]
    assert parsed["rows"] == [{"GROUP": "g", "TOPIC": "t", "PARTITION": "0", "CURRENT-OFFSET": "15",
                               "LOG-END-OFFSET": "20", "LAG": "5", "CONSUMER-ID": "-", "HOST": "-",
                               "CLIENT-ID": "-"}]
    state = cgtool.parse("GROUP COORDINATOR (ID) ASSIGNMENT-STRATEGY STATE #MEMBERS\n"
                         "g 127.0.0.1:40179 (1) range Stable 1\n")
    assert state["rows"][0]["COORDINATOR"] == "127.0.0.1:<port>"


def test_perf_tool_output_parsing():
    p = parse_producer_perf("50000 records sent, 35137.034434 records/sec (34.31 MB/sec), 361.75 ms "
                            "avg latency, 564.00 ms max latency, 350 ms 50th, 543 ms 95th, 556 ms "
                            "99th, 563 ms 99.9th.\n")
    assert p["MB/s"] == 34.31 and p["p99.9 ms"] == 563
    c = parse_consumer_perf(
        "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
        "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec\n"
        "2026-11-21 22:43:30:036, 2026-11-21 22:43:34:656, 195.3125, 42.2754, 200000, 43290.0433, "
        "3561, 1059, 184.4311, 188857.4127\n")
    assert c["MB/s"] == 184.4311 and c["records"] == 200000


def test_aggregate_takes_medians_and_ratios():
    runs = [{"section": "produce", "case": "c", "broker": b, "rep": i, "metrics": {"MB/s": v}}
            for b, vals in (("brook", [1, 9, 3]), ("kafka", [2, 2, 4])) for i, v in enumerate(vals)]
    (row,) = aggregate(runs)
    assert (row.brook, row.kafka, row.ratio) == (3, 2, 1.5)
    assert "1.50x" in table([row])


def test_chart_renders(tmp_path):
    pytest.importorskip("matplotlib")
    from bench import chart
    runs = [{"section": s, "case": c, "broker": b, "rep": 0, "metrics": {m: v}}
            for s, c, m in (("produce", "perf 1KiB p1 acks=1 none", "MB/s"),
                            ("latency", "e2e ck 1KiB p1 acks=all @100/s", "p99 ms"),
                            ("memory", "idle", "RSS idle MiB"))
            for b, v in (("brook", 1.0), ("kafka", 2.0))]
    png = chart.render(aggregate(runs), tmp_path / "c.png", "test")
    assert png.stat().st_size > 10_000


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_compat_suite_slice_against_both_brokers(tmp_path):
    from tools import paths
    if paths.check():
        pytest.skip("test tools missing: make tools")
    from bench.compat.__main__ import main
    out = tmp_path / "compat.md"
    assert main(["--clients", "confluent-kafka,wire", "--only", "errors,wire", "--no-write",
                 "--output", str(out)]) == 0
