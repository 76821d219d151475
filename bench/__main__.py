"""python -m bench: Brook and Apache Kafka side by side on this machine, in one run.

Sections (select with --sections):
  startup   fresh broker, time from spawning the process to the first acknowledged produce
  produce   throughput with Kafka's ProducerPerformance ("perf") and confluent-kafka ("ck")
  consume   throughput with Kafka's ConsumerPerformance and confluent-kafka
  latency   end-to-end (confluent-kafka produce -> consume) and produce->ack
            (ProducerPerformance --throughput) latency at a fixed fraction of the slower
            broker's peak rate
  memory    broker RSS (/proc, process tree) when idle and its peak under the loads above
  replicated  three nodes of each, RF=3 topics with min.insync.replicas=2: confluent-kafka
            acks=all produce (1 and 12 partitions), consume, end-to-end latency at a
            fraction of the slower cluster's peak, and the three nodes' summed RSS peak

Every case runs --runs times per broker, alternating which broker goes first, on a fresh
topic; the table shows medians and Brook/Kafka for every row. Results: a table on the
terminal, bench/results/bench-<time>.json and bench/results/bench-<time>.png.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import sys
import time
from dataclasses import dataclass
from functools import partial

from bench import RESULTS_DIR
from bench import chart as chart_mod
from bench.brokers import (
    CLUSTER_NODES,
    KINDS,
    PARITY_CONFIG,
    brook_version,
    machine_note,
    start,
    start_cluster,
    use_brook_ref,
)
from bench.stats import aggregate, table
from bench.workloads import (
    MB,
    Sampler,
    WorkloadError,
    ck_consume,
    ck_e2e,
    ck_produce,
    consumer_perf,
    create_topic,
    measure_startup,
    producer_perf,
)

SECTIONS = ("startup", "produce", "consume", "latency", "memory", "replicated")
REPLICATED_PRODUCE_PARTITIONS = (1, 12)


def ack_latency(bootstrap, topic, records, size, rate) -> dict:
    m = producer_perf(bootstrap, topic, records, size, "all", "none", throughput=rate)
    return {**m, "achieved rec/s": m["records/s"]}


@dataclass(frozen=True)
class ProduceCase:
    tool: str  # "perf" | "ck"
    size: int
    partitions: int
    acks: str
    codec: str

    @property
    def label(self) -> str:
        size = f"{self.size // 1024}KiB" if self.size % 1024 == 0 else f"{self.size}B"
        return f"{self.tool} {size} p{self.partitions} acks={self.acks} {self.codec}"


def produce_cases(args) -> list[ProduceCase]:
    sizes = [int(s) for s in args.sizes.split(",")]
    parts = [int(p) for p in args.partitions.split(",")]
    acks = args.acks.split(",")
    codecs = args.codecs.split(",")
    cases: list[tuple] = []
    if args.matrix == "full":
        cases = list(itertools.product(sizes, parts, acks, codecs))
    else:  # one factor at a time around the baseline (the first value of each list)
        base = (sizes[0], parts[0], acks[0], codecs[0])
        cases = [base]
        for i, levels in enumerate((sizes, parts, acks, codecs)):
            for v in levels[1:]:
                c = list(base)
                c[i] = v
                cases.append(tuple(c))
    return [ProduceCase(t, *c) for t in args.tools.split(",") for c in cases]


class Bench:
    def __init__(self, args):
        self.args = args
        self.runs: list[dict] = []
        self.t0 = time.monotonic()
        self.done = 0
        self.planned = 0
        self.brokers: dict = {}
        self.peak_rss: dict[tuple[str, int], int] = {}  # (broker, rep) -> bytes
        self.errors: list[str] = []

    # ------------------------------------------------------------ bookkeeping
    def order(self, i: int) -> list[str]:
        kinds = [k for k in KINDS if k in self.args.brokers]
        return kinds if i % 2 == 0 else kinds[::-1]

    def log(self, msg: str) -> None:
        elapsed = time.monotonic() - self.t0
        eta = ""
        if self.done and self.planned > self.done:
            eta = f", ~{elapsed / self.done * (self.planned - self.done) / 60:.0f} min left"
        print(f"[{self.done:3}/{self.planned} {elapsed / 60:5.1f} min{eta}] {msg}", flush=True)

    def record(self, section, case, kind, rep, metrics, extra=None):
        self.runs.append({"section": section, "case": case, "broker": kind, "rep": rep,
                          "metrics": metrics, **(extra or {})})

    def measured(self, section, case, kind, rep, fn, nbytes=None):
        """Run fn() under a sampler of the broker; record its metrics (or the error)."""
        broker = self.brokers[kind]
        self.done += 1
        if not broker.alive():
            msg = f"{broker.label} is not running any more (see its log)"
            self.errors.append(msg)
            self.log(f"{section} {case} {broker.label}: SKIPPED, {msg}")
            return None
        try:
            with Sampler(broker.pids) as s:
                t = time.monotonic()
                m = fn()
                secs = time.monotonic() - t
        except WorkloadError as e:
            self.errors.append(f"{section} {case} {broker.label} rep {rep}: {e}")
            self.log(f"{section} {case} {broker.label}: FAILED {e}")
            return None
        key = (kind, rep)
        if section != "replicated":  # that one reports its own, summed over three nodes
            self.peak_rss[key] = max(self.peak_rss.get(key, 0), s.peak)
        latency = section == "latency" or case.startswith("e2e")
        keys = (("p50 ms", "p99 ms", "p99.9 ms", "achieved rec/s") if latency
                else ("MB/s", "records/s"))
        metrics = {k: m[k] for k in keys if k in m}
        if nbytes and s.cpu is not None:
            metrics["broker CPU s/GB"] = s.cpu / (nbytes / 1024**3)
        self.record(section, case, kind, rep, metrics, {"raw": m, "seconds": secs,
                                                        "broker_cpu_s": s.cpu, "rss_peak": s.peak,
                                                        "loadavg_1m": os.getloadavg()[0]})
        shown = ", ".join(f"{k} {v:,.1f}" for k, v in metrics.items() if v is not None)
        self.log(f"{section:8} {case:34} {broker.label} #{rep + 1}: {shown}  ({secs:.1f}s)")
        return m

    # ------------------------------------------------------------ sections
    def startup(self):
        a = self.args
        for rep in range(a.runs):
            for kind in self.order(rep):
                self.done += 1
                try:
                    st, broker = measure_startup(kind, lambda on_spawn, kind=kind: start(
                        kind, heap=a.kafka_heap, on_spawn=on_spawn))
                except Exception as e:  # noqa: BLE001 - recorded and reported
                    self.errors.append(f"startup {kind} rep {rep}: {e}")
                    self.log(f"startup {kind}: FAILED {e}")
                    continue
                try:
                    time.sleep(3)
                    idle = broker.rss()
                finally:
                    broker.stop()
                m = {"start to first produce s": st.to_first_produce,
                     "start to listening s": st.to_ready,
                     "storage format s": st.format_seconds if kind == "kafka" else None}
                self.record("startup", "fresh broker, empty data dir", kind, rep, m)
                self.record("memory", "fresh broker, 3 s after first produce", kind, rep,
                            {"RSS idle MiB": idle / MB if idle else None})
                self.log(f"startup  {broker.label} #{rep + 1}: first produce acked "
                         f"{st.to_first_produce:.2f}s after spawn (listening {st.to_ready:.2f}s"
                         + (f", + storage format {st.format_seconds:.2f}s" if kind == "kafka" else "")
                         + f"), idle RSS {idle / MB if idle else 0:.0f} MiB")

    def warmup(self):
        for kind in self.order(0):
            b = self.brokers[kind]
            topic = "warmup"
            create_topic(b.bootstrap, topic, 1)
            t = time.monotonic()
            try:
                producer_perf(b.bootstrap, topic, 30_000, 1024, "1", "none")
                consumer_perf(b.bootstrap, topic, 30_000)
                ck_produce(b.bootstrap, topic, 30_000, 1024, "1", "none")
            except WorkloadError as e:
                self.errors.append(f"warm-up {kind}: {e}")
            self.log(f"warm-up  {b.label}: done in {time.monotonic() - t:.1f}s (not measured)")

    def produce(self, cases):
        a = self.args
        for ci, case in enumerate(cases):
            mb = a.mb_per_run * (a.ck_factor if case.tool == "ck" else 1)
            records = max(1000, int(mb * MB / case.size))
            for rep in range(a.runs):
                for kind in self.order(ci + rep):
                    b = self.brokers[kind]
                    topic = f"produce-{ci}-{rep}"
                    try:
                        create_topic(b.bootstrap, topic, case.partitions)
                    except Exception as e:  # noqa: BLE001
                        self.errors.append(f"create {topic} on {kind}: {e}")
                        continue
                    tool = producer_perf if case.tool == "perf" else ck_produce
                    fn = partial(tool, b.bootstrap, topic, records, case.size, case.acks, case.codec)
                    self.measured("produce", case.label, kind, rep, fn, records * case.size)

    def consume(self):
        a = self.args
        size = 1024
        records = max(1000, int(a.mb_per_run * MB / size))
        for kind in self.order(0):
            b = self.brokers[kind]
            create_topic(b.bootstrap, "consume-1k", 1)
            producer_perf(b.bootstrap, "consume-1k", records, size, "1", "none")
        self.log(f"consume  topic consume-1k filled with {records:,} x 1 KiB on both brokers")
        tools = a.tools.split(",")
        for ti, tool in enumerate(tools):
            label = f"{tool} 1KiB p1 ({records:,} records)"
            for rep in range(a.runs):
                for kind in self.order(ti + rep):
                    b = self.brokers[kind]
                    if tool == "perf":
                        fn = lambda b=b: consumer_perf(b.bootstrap, "consume-1k", records)  # noqa: E731
                    else:
                        fn = lambda b=b: ck_consume(b.bootstrap, "consume-1k", records)  # noqa: E731
                    self.measured("consume", label, kind, rep, fn, records * size)

    def peak_rate(self, tool: str) -> float:
        """The slower broker's peak records/s with this load generator at the latency
        record size, from the produce section (baseline partitions/acks/codec) or a
        calibration run. The slower one: offered more than it can take, a broker only
        queues, and the latency rows would measure the queue."""
        a = self.args
        size = a.latency_size
        label = ProduceCase(tool, size, 1, "1", "none").label
        peaks = []
        for kind, b in self.brokers.items():
            rates = sorted(r["metrics"]["records/s"] for r in self.runs
                           if r["section"] == "produce" and r["broker"] == kind
                           and r["case"] == label)
            if rates:
                peaks.append(rates[len(rates) // 2])
                continue
            topic = f"calibrate-{tool}"
            create_topic(b.bootstrap, topic, 1)
            records = max(1000, int(a.mb_per_run * (a.ck_factor if tool == "ck" else 1) * MB
                                    / size))
            m = (producer_perf if tool == "perf" else ck_produce)(b.bootstrap, topic, records,
                                                                  size, "1", "none")
            self.log(f"latency  calibration: {b.label} peak {m['records/s']:,.0f} records/s "
                     f"({label})")
            peaks.append(m["records/s"])
        return min(peaks)

    def latency(self):
        a = self.args
        size = f"{a.latency_size // 1024}KiB" if a.latency_size % 1024 == 0 else f"{a.latency_size}B"
        rates = {tool: max(1, int(self.peak_rate(tool) * a.latency_fraction))
                 for tool in ("ck", "perf")}
        self.log(f"latency  offered load = {a.latency_fraction:.0%} of the slower broker's peak "
                 f"records/s with "
                 f"the same load generator: confluent-kafka {rates['ck']:,}/s, "
                 f"ProducerPerformance {rates['perf']:,}/s")
        e2e_case = f"e2e ck {size} p1 acks=all @{rates['ck']:,}/s"
        ack_case = f"produce->ack perf {size} p1 acks=all @{rates['perf']:,}/s"
        for rep in range(a.runs):
            for kind in self.order(rep):
                b = self.brokers[kind]
                topic = f"latency-{rep}"
                create_topic(b.bootstrap, topic, 1)
                self.measured("latency", e2e_case, kind, rep, partial(
                    ck_e2e, b.bootstrap, topic, rates["ck"], a.latency_seconds, a.latency_size))
            for kind in self.order(rep + 1):
                b = self.brokers[kind]
                topic = f"latency-ack-{rep}"
                create_topic(b.bootstrap, topic, 1)
                n = int(rates["perf"] * a.latency_seconds)
                self.measured("latency", ack_case, kind, rep, partial(
                    ack_latency, b.bootstrap, topic, n, a.latency_size, rates["perf"]))

    def replicated(self):
        """Three nodes of each broker, one cluster at a time (six brokers at once would not
        leave the load generator a core), each warmed up first. Pass 1: throughput; pass 2: latency at a fraction of the slower cluster's peak acks=all rate,
        so that neither cluster is offered more than it can take. The order of the
        clusters alternates between the passes."""
        a = self.args
        size = 1024
        records = max(1000, int(a.mb_per_run * a.ck_factor / 2 * MB / size))
        produce_labels = {p: f"ck 1KiB p{p} RF=3 acks=all" for p in REPLICATED_PRODUCE_PARTITIONS}
        consume_label = f"ck 1KiB p1 RF=3 ({records:,} records)"
        for kind in self.order(0):
            with self._cluster(kind) as cluster:
                if cluster is None:
                    continue
                for rep in range(a.runs):
                    for partitions, label in produce_labels.items():
                        topic = f"rf3-p{partitions}-{rep}"
                        create_topic(cluster.bootstrap, topic, partitions)
                        self.measured("replicated", label, kind, rep, partial(
                            ck_produce, cluster.bootstrap, topic, records, size, "all", "none"),
                            records * size)
                    self.measured("replicated", consume_label, kind, rep, partial(
                        ck_consume, cluster.bootstrap, f"rf3-p1-{rep}", records),
                        records * size)
        peaks = []
        for kind in self.order(0):
            rates = sorted(r["metrics"]["records/s"] for r in self.runs
                           if r["broker"] == kind and r["case"] == produce_labels[1])
            if rates:
                peaks.append(rates[len(rates) // 2])
        rate = max(1, int(min(peaks, default=10_000) * a.latency_fraction))
        case = (f"e2e ck 1KiB p1 RF=3 acks=all @{rate:,}/s ({a.latency_fraction:.0%} of the "
                "slower peak)")
        for kind in self.order(1):
            with self._cluster(kind) as cluster:
                if cluster is None:
                    continue
                for rep in range(a.runs):
                    topic = f"rf3-latency-{rep}"
                    create_topic(cluster.bootstrap, topic, 1)
                    self.measured("replicated", case, kind, rep, partial(
                        ck_e2e, cluster.bootstrap, topic, rate, a.latency_seconds, size))

    @contextlib.contextmanager
    def _cluster(self, kind):
        """A started cluster as self.brokers[kind] (None if it did not start); its summed
        RSS peak over the whole stay is recorded as one more row."""
        self.log(f"replicated: starting {CLUSTER_NODES} {kind} nodes")
        try:
            cluster = self.brokers[kind] = start_cluster(kind, heap=self.args.kafka_heap)
        except Exception as e:  # noqa: BLE001 - recorded and reported
            self.errors.append(f"replicated: {kind} cluster did not start: {e}")
            self.log(f"replicated: {kind} cluster FAILED to start: {e}")
            yield None
            return
        try:
            if self.args.warmup:  # JIT for Kafka, page cache and imports for both
                create_topic(cluster.bootstrap, "rf3-warmup", 1)
                ck_produce(cluster.bootstrap, "rf3-warmup", 30_000, 1024, "all", "none")
                self.log(f"replicated: {cluster.label} warmed up (not measured)")
            with Sampler(cluster.pids) as whole:
                yield cluster
            self.record("replicated", f"{CLUSTER_NODES} nodes under these loads", kind,
                        len([r for r in self.runs if r["broker"] == kind
                             and r["case"].startswith(f"{CLUSTER_NODES} nodes")]),
                        {"RSS peak MiB (sum)": whole.peak / MB})
        finally:
            cluster.stop()
            del self.brokers[kind]

    def memory_rows(self):
        for (kind, rep), peak in sorted(self.peak_rss.items()):
            self.record("memory", "peak during the produce/consume/latency loads", kind, rep,
                        {"RSS peak MiB": peak / MB})

    # ------------------------------------------------------------ main
    def run(self):
        a = self.args
        sections = a.sections.split(",")
        cases = produce_cases(a) if "produce" in sections else []
        nb = len(a.brokers)
        self.planned = (a.runs * nb * (("startup" in sections) + len(cases)
                                       + ("consume" in sections) * len(a.tools.split(","))
                                       + ("latency" in sections) * 2
                                       + ("replicated" in sections) * 4))  # per run
        print(f"Brook vs Kafka benchmark: {len(cases)} produce cases, {a.runs} runs each per "
              f"broker, sections {','.join(sections)}", flush=True)
        print("NOTE: shared 2-core machine; brokers and load generators compete for the same "
              "CPUs, so absolute figures are low and noisy; runs alternate to spread the bias.",
              flush=True)
        if "startup" in sections:
            self.startup()
        needs_brokers = any(s in sections for s in ("produce", "consume", "latency", "memory"))
        if needs_brokers:
            self.single_node(sections, cases)
        if "replicated" in sections:
            self.replicated()

    def single_node(self, sections, cases):
        a = self.args
        try:
            for kind in a.brokers:
                self.brokers[kind] = start(kind, heap=a.kafka_heap)
                self.log(f"started {self.brokers[kind].label} ({self.brokers[kind].version}) on "
                         f"{self.brokers[kind].bootstrap}, pid {self.brokers[kind].pid}")
            if a.warmup:
                self.warmup()
            if cases:
                self.produce(cases)
            if "consume" in sections:
                self.consume()
            if "latency" in sections:
                self.latency()
        finally:
            for b in self.brokers.values():
                b.stop()
            self.brokers.clear()
        if "memory" in sections:
            self.memory_rows()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--runs", type=int, default=3, help="repetitions per case and broker (3)")
    ap.add_argument("--sections", default=",".join(SECTIONS))
    ap.add_argument("--brokers", default="brook,kafka", help="brook,kafka (ratios need both)")
    ap.add_argument("--tools", default="perf,ck", help="perf (Kafka's perf tools), ck (confluent-kafka)")
    ap.add_argument("--matrix", choices=("oaat", "full"), default="oaat",
                    help="oaat: baseline + one factor changed at a time (default); full: every "
                         "combination")
    ap.add_argument("--sizes", default="1024,100", help="record sizes in bytes; first = baseline")
    ap.add_argument("--partitions", default="1,12")
    ap.add_argument("--acks", default="1,all")
    ap.add_argument("--codecs", default="none,lz4")
    ap.add_argument("--mb-per-run", type=float, default=80.0,
                    help="data per produce/consume run in MiB (80: 80k x 1 KiB records)")
    ap.add_argument("--ck-factor", type=float, default=4.0,
                    help="confluent-kafka produce runs move this many times --mb-per-run (4: "
                         "it is ~10x faster than ProducerPerformance here; keeps runs >= 2 s)")
    ap.add_argument("--latency-fraction", type=float, default=0.5,
                    help="offered load as a fraction of the slower broker's peak records/s (0.5)")
    ap.add_argument("--latency-seconds", type=float, default=10.0)
    ap.add_argument("--latency-size", type=int, default=1024)
    ap.add_argument("--kafka-heap", default="1g", help="Kafka's -Xmx (kafka-server-start.sh: 1g)")
    ap.add_argument("--no-warmup", dest="warmup", action="store_false")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 1 run, 8 MiB per run, baseline cases only, 3 s latency")
    ap.add_argument("--brook-ref", default=None, metavar="GIT_REV",
                    help="run Brook from this git revision (e.g. HEAD) instead of the working tree")
    ap.add_argument("--out", default=str(RESULTS_DIR))
    ap.add_argument("--no-chart", dest="chart", action="store_false")
    a = ap.parse_args(argv)
    a.brokers = [k for k in a.brokers.split(",") if k]
    if a.quick:
        a.runs, a.mb_per_run, a.latency_seconds = 1, 8.0, 3.0
        a.sizes, a.partitions, a.acks, a.codecs = a.sizes.split(",")[0], "1", "1", "none"

    from pathlib import Path
    use_brook_ref(a.brook_ref)
    bench = Bench(a)
    meta = {**machine_note(), "brook": brook_version(), "args": vars(a),
            "parity_config": PARITY_CONFIG,
            "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    try:
        bench.run()
    except KeyboardInterrupt:
        print("interrupted: reporting what was measured", file=sys.stderr)
    meta["minutes"] = (time.monotonic() - bench.t0) / 60
    meta["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    rows = aggregate(bench.runs)
    print()
    print(f"{meta['brook']} vs Apache Kafka {meta['kafka']} — medians of {a.runs} run(s) per broker; "
          f"{meta['cpus']} CPUs shared with other jobs (1-min load average "
          f"{meta['loadavg_1m_at_start']} at start, {meta['loadavg_1m_at_end']} at end)")
    print(table(rows))
    if bench.errors:
        print("\nerrors:\n  " + "\n  ".join(bench.errors))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = out / f"bench-{stamp}.json"
    path.write_text(json.dumps({"meta": meta, "rows": [r.to_json() for r in rows],
                                "runs": bench.runs, "errors": bench.errors}, indent=1))
    print(f"\nresults: {path}")
    if a.chart and rows:
        sub = (f"{meta['brook']} vs Kafka {meta['kafka']} (JVM -Xmx{a.kafka_heap}), {a.runs} runs each, "
               f"{meta['cpus']} shared CPUs (load avg {meta['loadavg_1m_at_start']} -> "
               f"{meta['loadavg_1m_at_end']}), loopback, {meta['started']}")
        png = chart_mod.render(rows, out / f"bench-{stamp}.png", sub)
        print(f"chart:   {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
