"""Render a comparison as a terminal table and as docs/compatibility.md. Pure."""

from __future__ import annotations

import json
from typing import Any

from bench.compat.model import Row, collapse, differing_fields, summary

FAMILY_TEXT = {
    "produce-consume": "Produce then consume: keys, values, headers, timestamps, offsets and "
                       "order for every codec; edge records (null key/value, empty, 500 KB, "
                       "repeated/null headers); which codec the stored batches carry.",
    "timestamps": "message.timestamp.type=LogAppendTime.",
    "list-offsets": "ListOffsets earliest / latest / max-timestamp / by time (before, at, "
                    "between and after the records), DeleteRecords and earliest afterwards, "
                    "unknown topic.",
    "admin": "CreateTopics, DescribeTopics, DescribeConfigs (values of every topic config, "
             "sources and flags, broker configs), Incremental/AlterConfigs, CreatePartitions, "
             "validate-only create, DeleteTopics.",
    "groups": "A consumer group joins, reads, commits chosen offsets; describe while a member, "
              "after leaving, offsets and lag; ListGroups; Kafka's kafka-consumer-groups "
              "--describe (offsets/lag and --state); delete (while a member, empty, missing).",
    "errors": "Refusals: existing topic, invalid names, 0 partitions, replication factor above "
              "the broker count, invalid and unknown configs, decreasing partitions, missing "
              "topics, too-large records, timestamps too far ahead; auto-creation.",
}


def show(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def diff_view(a: Any, b: Any) -> tuple[Any, Any]:
    """For two dicts, only the fields that differ (nested once); else the values."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(differing_fields(a, b))
        out_a, out_b = {}, {}
        for k in keys:
            va, vb = a.get(k, "<absent>"), b.get(k, "<absent>")
            if isinstance(va, dict) and isinstance(vb, dict):
                va, vb = diff_view(va, vb)
            out_a[k], out_b[k] = va, vb
        return out_a, out_b
    return a, b


def _cell(counts: dict[str, int]) -> str:
    parts = [f"{counts.get('same', 0)} same"]
    for verdict, label in (("bug", "bug"), ("choice", "choice"), ("skipped", "n/a")):
        if counts.get(verdict):
            parts.append(f"{counts[verdict]} {label}{'s' if counts[verdict] > 1 and verdict != 'skipped' else ''}")
    return ", ".join(parts)


def terminal(rows: list[Row], clients: list[str]) -> str:
    lines = []
    summ = summary(rows)
    cells = {(fam, c): _cell(per[c]) if c in per else "-" for fam, per in summ.items()
             for c in clients}
    width = {c: max([len(c)] + [len(cells[f, c]) for f in summ]) for c in clients}
    lines.append("Compatibility summary (Brook vs Kafka, per scenario family and client)")
    lines.append(f"{'family':16}" + "".join(f" | {c:{width[c]}}" for c in clients))
    for fam in summ:
        lines.append(f"{fam:16}" + "".join(f" | {cells[fam, c]:{width[c]}}" for c in clients))
    diffs = collapse(rows)
    lines.append("")
    lines.append(f"Differences ({sum(1 for d in diffs if d['verdict'] == 'bug')} bugs, "
                 f"{sum(1 for d in diffs if d['verdict'] == 'choice')} deliberate choices):")
    causes = {d["note"] for d in diffs if d["verdict"] == "bug" and d["note"]}
    for c in sorted(causes):
        lines.append(f"  known bug: {c.split('. ', 1)[0]}")
    header = f"{'verdict':7} {'scenario':30} {'key':38} {'clients':22} {'Brook':44} Kafka"
    lines.append(header)
    lines.append("-" * len(header))
    for d in sorted(diffs, key=lambda d: (d["verdict"], d["note"], d["scenario"], d["key"])):
        vb, vk = diff_view(d["brook"], d["kafka"])
        lines.append(f"{d['verdict']:7} {show(d['scenario'], 30):30} {show(d['key'], 38):38} "
                     f"{show(','.join(_short(d['clients'])), 22):22} {show(vb, 44):44} "
                     f"{show(vk, 44)}")
    return "\n".join(lines)


def _short(clients: list[str]) -> list[str]:
    return [{"confluent-kafka": "ck", "kafka-python": "kp", "aiokafka": "aio", "kafkajs": "kjs"}
            .get(c, c) for c in clients]


def _md(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return "`" + text.replace("`", "'").replace("|", "\\|").replace("\n", " ") + "`"


def markdown(rows: list[Row], meta: dict) -> str:
    clients = meta["clients"]
    summ = summary(rows)
    diffs = collapse(rows)
    bugs = [d for d in diffs if d["verdict"] == "bug"]
    choices = [d for d in diffs if d["verdict"] == "choice"]
    total = {v: sum(1 for r in rows if r.verdict == v) for v in ("same", "bug", "choice", "skipped")}
    out = [
        "# Compatibility: Brook next to Apache Kafka",
        "",
        "<!-- Generated by `python -m bench.compat` (make compat). Do not edit by hand: "
        "deliberate differences are declared in bench/compat/choices.py. -->",
        "",
        f"Generated {meta['generated']} by `{meta['command']}`: one scenario suite, run with "
        f"{len(clients)} clients ({', '.join(clients)}) against Brook ({meta['brook']}) and "
        f"Apache Kafka {meta['kafka']} (single node, KRaft), each started fresh on loopback. "
        "Every observable result (acks, records read back, offsets, configs, group "
        "descriptions, error names, Kafka's own `kafka-consumer-groups` output) is normalised "
        "and compared.",
        "",
        f"**{total['same']} results identical, {len(bugs)} differences to fix "
        f"({total['bug']} results), {len(choices)} deliberate differences "
        f"({total['choice']} results), {total['skipped']} not applicable to a client.**",
        "",
        "## How to read this",
        "",
        "- Normalisation: errors are Kafka's protocol error names (`error UNKNOWN_TOPIC_OR_PARTITION`, "
        "whatever the client calls them); bytes are shown as Python literals (long values as "
        "`<N bytes>`); timestamps in ListOffsets relative to the records' base time T; member ids "
        "as `<set>`; ports as `<port>`; group states upper-case.",
        "- Both brokers run with the same non-default settings (those tools/reference_kafka.py "
        f"writes): `{json.dumps(meta['parity_config'], sort_keys=True)}`.",
        "- A difference is either a **bug** (Brook must change) or a **deliberate choice** listed "
        "in `bench/compat/choices.py` with its reason. Anything not declared there is a bug.",
        "- `n/a`: the client cannot do it (e.g. kcat has no admin API, kafka-python no snappy "
        "without python-snappy); the same on both brokers and not compared.",
        "",
        "## Summary",
        "",
        "| scenario family | " + " | ".join(clients) + " |",
        "|---|" + "---|" * len(clients),
    ]
    for fam, per in summ.items():
        out.append(f"| {fam} | " + " | ".join(_cell(per[c]) if c in per else "–" for c in clients) + " |")
    out += ["", "What each family covers:", ""]
    out += [f"- **{fam}**: {text}" for fam, text in FAMILY_TEXT.items()]
    out += ["", "## Differences to fix (bugs)", ""]
    if not bugs:
        out.append("None.")
    groups: dict[str, list[dict]] = {}
    for d in bugs:
        groups.setdefault(d["note"], []).append(d)
    ordered = sorted(groups.items(), key=lambda kv: (kv[0] == "", kv[0]))
    for i, (note, items) in enumerate(ordered, 1):
        title, _, analysis = note.partition(". ")
        out += [f"### B{i}. {title.rstrip('.') if note else 'Not yet analysed'}", ""]
        if analysis:
            out += [analysis, ""]
        for d in sorted(items, key=lambda d: (d["scenario"], d["key"])):
            out += [f"- **{d['scenario']} / {d['key']}** ({', '.join(d['clients'])})",
                    f"  - request: {d['request']}",
                    f"  - Brook: {_md(d['brook'])}",
                    f"  - Kafka: {_md(d['kafka'])}"]
            if isinstance(d["brook"], dict) and isinstance(d["kafka"], dict):
                vb, vk = diff_view(d["brook"], d["kafka"])
                out.append(f"  - differs in: Brook {_md(vb)} vs Kafka {_md(vk)}")
        out.append("")
    out += ["## Deliberate differences", ""]
    if not choices:
        out.append("None.")
    reasons: dict[str, list[dict]] = {}
    for d in choices:
        reasons.setdefault(d["note"], []).append(d)
    for note, items in reasons.items():
        out += [f"- {note}", "", "  | scenario | key | clients | Brook | Kafka |",
                "  |---|---|---|---|---|"]
        for d in sorted(items, key=lambda d: (d["scenario"], d["key"])):
            vb, vk = diff_view(d["brook"], d["kafka"])
            out.append(f"  | {d['scenario']} | {d['key']} | {', '.join(_short(d['clients']))} | "
                       f"{_md(vb)} | {_md(vk)} |")
        out.append("")
    machine = meta["machine"]
    machine_text = (f"{machine.get('cpus')} CPUs (shared), {machine.get('mem_total_mib')} MiB, "
                    f"{machine.get('platform')}, Python {machine.get('python')}, load average "
                    f"{machine.get('loadavg_1m_at_start')} at start") if isinstance(machine, dict) \
        else str(machine)
    out += ["", "## Run", "",
            f"- machine: {machine_text}",
            f"- wall time: {meta['seconds']:.0f} s",
            "- regenerate: `make compat` or `.venv/bin/python -m bench.compat` "
            "(raw observations: bench/results/compat-*.json)",
            ""]
    return "\n".join(out)
