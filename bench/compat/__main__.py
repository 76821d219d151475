"""python -m bench.compat: run the scenario suite against Brook and Kafka, compare, report.

Brokers run one after the other (Kafka first, then Brook), each fresh, with the same
clients and the same deterministic requests. The comparison is printed and written to
docs/compatibility.md (unless --no-write or a subset was selected with --only); the raw
observations go to bench/results/compat-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime

from bench import REPO_ROOT, RESULTS_DIR
from bench.brokers import PARITY_CONFIG, brook_version, machine_note, start, use_brook_ref
from bench.compat import report
from bench.compat.choices import CHOICES, KNOWN_BUGS
from bench.compat.extras import get_extras
from bench.compat.model import Observation, compare
from bench.compat.scenarios import run_client
from tests.clients import ALL_DRIVERS, get_driver
from tools import paths

DEFAULT_CLIENTS = ("confluent-kafka", "kafka-python", "java", "aiokafka", "kafkajs", "kcat", "wire")
DOC = REPO_ROOT / "docs" / "compatibility.md"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.compat", description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", default=",".join(DEFAULT_CLIENTS),
                    help=f"comma-separated, from {','.join(ALL_DRIVERS)},wire (default: all)")
    ap.add_argument("--only", default="", help="comma-separated scenario prefixes, e.g. groups,errors")
    ap.add_argument("--output", default=str(DOC), help="markdown report path")
    ap.add_argument("--no-write", action="store_true", help="print only; do not write the report")
    ap.add_argument("--brook-ref", default=None, metavar="GIT_REV",
                    help="run Brook from this git revision (e.g. HEAD) instead of the working tree")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a bug-difference is found")
    ap.add_argument("--from-json", help="re-render a previous run's observations (no brokers)")
    args = ap.parse_args(argv)

    use_brook_ref(args.brook_ref)
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    only = {o.strip() for o in args.only.split(",") if o.strip()} or None
    t0 = time.monotonic()
    if args.from_json:
        data = json.loads(open(args.from_json).read())
        obs = {k: [Observation(**o) for o in v] for k, v in data["observations"].items()}
        meta = data["meta"]
    else:
        problems = paths.check()
        if any("Kafka" in p or "java" in p for p in problems):
            print("\n".join(problems), file=sys.stderr)
            return 2
        drivers, extras = {}, {}
        for c in clients:
            if c == "wire":  # raw requests through tests/support/kafka_wire.py
                drivers[c], extras[c] = None, get_extras(c)
                continue
            d = get_driver(c)
            reason = d.unavailable_reason()
            if reason:
                print(f"skipping {c}: {reason}", file=sys.stderr)
                continue
            drivers[c], extras[c] = d, get_extras(c)
        clients = list(drivers)
        obs: dict[str, list[Observation]] = {}
        try:
            for kind in ("kafka", "brook"):
                print(f"starting {kind} ...", flush=True)
                broker = start(kind)
                print(f"{broker.label} ({broker.version}) on {broker.bootstrap}", flush=True)
                try:
                    obs[kind] = []
                    for c in clients:
                        obs[kind] += run_client(broker, c, drivers[c], extras[c], only,
                                                progress=lambda m: print(m, flush=True))
                finally:
                    broker.stop()
                    for c in clients:  # fresh helper processes (JVM, node) for each broker
                        if drivers[c] is not None:
                            drivers[c].close()
                        extras[c].close()
        finally:
            for c in clients:
                if drivers[c] is not None:
                    drivers[c].close()
                extras[c].close()
        meta = {
            "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": "python -m bench.compat" + (f" --clients {args.clients}"
                                                   if args.clients != ",".join(DEFAULT_CLIENTS) else ""),
            "clients": clients,
            "brook": brook_version(),
            "kafka": paths.kafka_version(),
            "parity_config": PARITY_CONFIG,
            "machine": machine_note(),
            "seconds": time.monotonic() - t0,
        }
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        raw = RESULTS_DIR / f"compat-{time.strftime('%Y%m%d-%H%M%S')}.json"
        raw.write_text(json.dumps({"meta": meta, "observations": {
            k: [o.__dict__ for o in v] for k, v in obs.items()}}, indent=1, default=str))
        print(f"raw observations: {raw.relative_to(REPO_ROOT)}")

    rows = compare(obs["brook"], obs["kafka"], CHOICES, KNOWN_BUGS)
    print()
    print(report.terminal(rows, meta["clients"]))
    if not args.no_write and not only:
        out = args.output
        from pathlib import Path
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(report.markdown(rows, meta))
        print(f"\nwrote {out}")
    bugs = sum(1 for r in rows if r.verdict == "bug")
    return 1 if bugs and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
