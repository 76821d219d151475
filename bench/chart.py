"""One PNG with every benchmark section: Brook and Kafka side by side, medians, and the
Brook/Kafka ratio written above each pair of bars."""

from __future__ import annotations

from pathlib import Path

from bench.stats import Row

BROOK, KAFKA = "#1f77b4", "#ff7f0e"
LATENCY_METRICS = ("p50 ms", "p99 ms", "p99.9 ms")


def _tool(case: str) -> str:
    return case.split(" ", 1)[0]


def _rest(case: str) -> str:
    return case.split(" ", 1)[1] if " " in case else case


def panels(rows: list[Row]) -> list[tuple[str, list[tuple[str, Row]], bool]]:
    """(title, [(bar label, row)], log scale) for every panel that has data."""
    out = []
    for tool, name in (("perf", "Kafka ProducerPerformance"), ("ck", "confluent-kafka")):
        sel = [(_rest(r.case).replace(" acks", "\nacks"), r) for r in rows
               if r.section == "produce" and r.metric == "MB/s" and _tool(r.case) == tool]
        out.append((f"Produce throughput, {name} (MB/s, higher is better)", sel, False))
    names = {"perf": "ConsumerPerformance", "ck": "confluent-kafka"}
    sel = [(names.get(_tool(r.case), _tool(r.case)) + "\n" + _rest(r.case), r) for r in rows
           if r.section == "consume" and r.metric == "MB/s"]
    out.append(("Consume throughput, 1 KiB records (MB/s, higher is better)", sel, False))
    sel = []
    for r in rows:
        if r.section == "latency" and r.metric in LATENCY_METRICS:
            kind = "end-to-end\nconfluent-kafka" if r.case.startswith("e2e") else \
                "produce->ack\nProducerPerf."
            rate = r.case.rsplit("@", 1)[1] if "@" in r.case else ""
            sel.append((f"{r.metric.replace(' ms', '')}\n{kind}\n@{rate}", r))
    out.append(("Latency, same offered load on both brokers (ms, log scale, lower is better)", sel,
                True))
    sel = [("idle, fresh broker" if "RSS idle" in r.metric else "peak under load", r)
           for r in rows if r.section == "memory"]
    out.append(("Broker resident memory, RSS (MiB, lower is better)", sel, False))
    short = {"start to first produce s": "spawn -> first\nproduce acked",
             "start to listening s": "spawn -> ready\n(port / Metadata)",
             "storage format s": "storage format\n(Kafka only)"}
    sel = [(short.get(r.metric, r.metric), r) for r in rows if r.section == "startup"]
    out.append(("Start-up of a fresh broker (s, lower is better)", sel, False))
    sel = [(_rest(r.case).split(" @")[0].replace(" acks", "\nacks").replace(" (", "\n("), r)
           for r in rows if r.section == "replicated" and r.metric == "MB/s"]
    out.append(("Three nodes, RF=3, min.insync.replicas=2: confluent-kafka (MB/s, higher is "
                "better)", sel, False))
    sel = [(f"{r.metric.replace(' ms', '')}\nend-to-end acks=all", r) for r in rows
           if r.section == "replicated" and r.metric in LATENCY_METRICS]
    out.append(("Three nodes, RF=3: latency at half of the slower peak (ms, log scale, lower is "
                "better)", sel, True))
    return [(t, [(lab, r) for lab, r in sel if r.brook is not None or r.kafka is not None], log)
            for t, sel, log in out if sel]


def render(rows: list[Row], path: Path, subtitle: str) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ps = [p for p in panels(rows) if p[1]]
    if not ps:
        raise ValueError("nothing to plot")
    cols = 2
    nrows = (len(ps) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(18, 5.6 * nrows), squeeze=False)
    for ax in axes.flat[len(ps):]:
        ax.set_visible(False)
    for ax, (title, sel, log) in zip(axes.flat, ps, strict=False):
        xs = list(range(len(sel)))
        w = 0.38
        bvals = [r.brook or 0 for _, r in sel]
        kvals = [r.kafka or 0 for _, r in sel]
        ax.bar([x - w / 2 for x in xs], bvals, w, color=BROOK, label="Brook")
        ax.bar([x + w / 2 for x in xs], kvals, w, color=KAFKA, label="Kafka")
        top = max(bvals + kvals + [1e-9])
        for x, (_, r) in zip(xs, sel, strict=True):
            if r.ratio is None:
                continue
            y = max(r.brook or 0, r.kafka or 0)
            ax.text(x, y * 1.15 if log else y + top * 0.02, f"{r.ratio:.2f}x", ha="center",
                    va="bottom", fontsize=10, fontweight="bold")
        if log:
            ax.set_yscale("log")
            low = min(v for v in bvals + kvals if v > 0) if any(bvals + kvals) else 0.1
            ax.set_ylim(low / 2, top * 4)
        else:
            ax.set_ylim(0, top * 1.2)
        ax.set_xticks(xs)
        ax.set_xticklabels([lab for lab, _ in sel], fontsize=8 if len(sel) > 5 else 9)
        ax.set_title(title, fontsize=12)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(loc="upper left", fontsize=9)
    fig.suptitle("Brook vs Apache Kafka — medians; bold numbers are Brook/Kafka\n" + subtitle,
                 fontsize=13)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
