"""python -m bench.profile: where Brook spends its CPU under the benchmark loads.

Starts Brook, attaches py-spy (sampling, from PyPI: `pip install py-spy`) to the broker
process, runs one load (ProducerPerformance or ConsumerPerformance, or confluent-kafka),
and reports the hottest functions by own time ("self") and including callees
("total"), plus own time per module. By default py-spy samples only the thread holding
the GIL (`--gil`): for an asyncio broker that is its Python CPU time, C work done with
the GIL held included (uvloop's socket writes, bytes copies), waits excluded; so
percentages are shares of the broker's busy time. "Runner.run" own time is uvloop's
event loop itself (C: callbacks, socket reads/writes).

The collapsed stacks are kept in bench/results/profile-<load>-<time>.txt: open that file
in https://www.speedscope.app (it reads this format) or feed it to flamegraph.pl.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench import RESULTS_DIR
from bench.brokers import brook_version, start_brook, use_brook_ref
from bench.workloads import (
    MB,
    Sampler,
    ck_consume,
    ck_produce,
    consumer_perf,
    create_topic,
    producer_perf,
)

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*)\)$")


def py_spy() -> str:
    exe = Path(sys.executable).parent / "py-spy"
    found = str(exe) if exe.exists() else shutil.which("py-spy")
    if not found:
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


def parse_collapsed(text: str) -> tuple[Counter, Counter, Counter, int]:
    """(self samples per frame, total samples per frame, self per module, all samples)."""
    own: Counter = Counter()
    total: Counter = Counter()
    modules: Counter = Counter()
    n = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        c = int(count)
        frames = [f for f in stack.split(";") if f]
        if not frames:
            continue
        n += c
        own[frames[-1]] += c
        modules[module_of(frames[-1])] += c
        for f in set(frames):
            total[f] += c
    return own, total, modules, n


def module_of(frame: str) -> str:
    m = _FRAME.match(frame)
    path = m.group("file") if m else frame
    for marker in ("site-packages/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    if "/work/main/" in path:
        path = path.split("/work/main/", 1)[1]
    parts = path.replace("\\", "/").split("/")
    if parts[0] == "broker":  # the working tree (editable install)
        return "brook/" + "/".join(parts)
    if parts[0] == "brook":  # a --brook-ref snapshot
        return "/".join(parts)
    if parts and parts[0].startswith("python3."):
        parts = parts[1:]
    return "/".join(parts[:2]) if len(parts) > 1 else parts[0]


def short(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    return f"{m.group('func')} ({module_of(frame)})"


def report(text: str, top: int = 25) -> str:
    own, total, modules, n = parse_collapsed(text)
    if not n:
        return "no samples (was the broker busy?)"
    lines = [f"{n} samples of the busy broker", "", f"top {top} by own time (self):"]
    for f, c in own.most_common(top):
        lines.append(f"  {100 * c / n:5.1f}%  {short(f)}")
    lines += ["", f"top {top} by total time (self + callees):"]
    for f, c in total.most_common(top):
        lines.append(f"  {100 * c / n:5.1f}%  {short(f)}")
    lines += ["", "own time per module:"]
    for mod, c in modules.most_common(15):
        lines.append(f"  {100 * c / n:5.1f}%  {mod}")
    return "\n".join(lines)


def run(load: str, mb: float, rate: int, tool: str, repeat: int, gil: bool = True) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = RESULTS_DIR / f"profile-{load}-{tool}{'' if gil else '-allthreads'}-{stamp}.txt"
    broker = start_brook()
    try:
        records = int(mb * MB / 1024)
        # Unprofiled warm-up: first connections, the group coordinator's __consumer_offsets.
        create_topic(broker.bootstrap, "warmup", 1)
        producer_perf(broker.bootstrap, "warmup", 5000, 1024, "1", "none")
        consumer_perf(broker.bootstrap, "warmup", 5000)
        create_topic(broker.bootstrap, "profile", 1)
        if load == "consume":  # fill first, unprofiled, as the benchmark does
            producer_perf(broker.bootstrap, "profile", records, 1024, "1", "none")
        spy = subprocess.Popen([py_spy(), "record", "--pid", str(broker.pid), "--rate", str(rate),
                                "--format", "raw", "--nolineno", "--output", str(out),
                                *(["--gil"] if gil else [])],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)  # attach
        t0 = time.monotonic()
        rates = []
        with Sampler(broker.pid) as s:
            for _ in range(repeat):
                if load == "produce":  # appends to the same topic each time
                    m = (producer_perf if tool == "perf" else ck_produce)(
                        broker.bootstrap, "profile", records, 1024, "1", "none")
                else:
                    m = (consumer_perf(broker.bootstrap, "profile", records) if tool == "perf"
                         else ck_consume(broker.bootstrap, "profile", records))
                rates.append(m["MB/s"])
        secs = time.monotonic() - t0
        spy.send_signal(signal.SIGINT)
        try:
            _, err = spy.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            spy.kill()
            _, err = spy.communicate()
        if not out.exists():
            raise SystemExit(f"py-spy wrote nothing: {err.strip()[-500:]}")
        cpu = f"{100 * s.cpu / secs:.0f}% of one core" if s.cpu is not None else "?"
        header = (f"{brook_version()} under {load} ({tool}, {repeat} x {records:,} x 1 KiB, "
                  f"1 partition, acks=1): {', '.join(f'{r:.1f}' for r in rates)} MB/s; broker CPU "
                  f"{cpu}; py-spy {rate} Hz over {secs:.1f}s, "
                  + ("samples taken only while a thread holds the GIL" if gil else "all threads"))
        text = report(out.read_text())
        summary = out.with_suffix(".summary.txt")
        summary.write_text(header + "\n\n" + text + "\n")
        print(header)
        print(text)
        print(f"\ncollapsed stacks (speedscope.app / flamegraph.pl): {out}\nsummary: {summary}")
        return out
    finally:
        broker.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    ap.add_argument("--load", default="produce,consume", help="produce, consume or both (default)")
    ap.add_argument("--tool", default="perf", choices=("perf", "ck"),
                    help="load generator: Kafka's perf tools (default) or confluent-kafka")
    ap.add_argument("--mb", type=float, default=200.0, help="MiB of 1 KiB records (200)")
    ap.add_argument("--rate", type=int, default=250, help="py-spy samples per second (250)")
    ap.add_argument("--all-threads", dest="gil", action="store_false",
                    help="sample every non-idle thread, not only the GIL holder (py-spy counts "
                         "some waits -- the metrics server's select, the executor's queue -- as busy)")
    ap.add_argument("--repeat", type=int, default=0,
                    help="loads per profile (default: produce 1, consume 3 -- reading is cheap)")
    ap.add_argument("--brook-ref", default=None, metavar="GIT_REV",
                    help="profile Brook from this git revision instead of the working tree")
    a = ap.parse_args(argv)
    use_brook_ref(a.brook_ref)
    if os.geteuid() != 0 and Path("/proc/sys/kernel/yama/ptrace_scope").exists():
        scope = Path("/proc/sys/kernel/yama/ptrace_scope").read_text().strip()
        if scope != "0":
            print(f"note: ptrace_scope={scope}; py-spy may need root or CAP_SYS_PTRACE",
                  file=sys.stderr)
    for load in a.load.split(","):
        run(load, a.mb, a.rate, a.tool, a.repeat if a.repeat else (1 if load == "produce" else 3),
            gil=a.gil)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
