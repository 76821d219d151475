"""python -m bench.raft_soak: run many seeds of the Raft simulation on all cores.

    python -m bench.raft_soak --seeds 100000 --start 1000000 --chaos-ms 4000 --workers 2

Prints seeds per second and, for each failing seed, the first line of its report and
the command that replays it with the full trace. The same runs, fewer of them, are the
default unit tests (tests/unit/test_raft_simulation.py); this is the long soak.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time


def _run(args: tuple[int, int, int]) -> tuple[int, list[tuple[int, str]]]:
    from tests.unit.test_raft_simulation import Simulation

    first, count, chaos_ms = args
    failures = []
    for seed in range(first, first + count):
        try:
            Simulation(seed, chaos_ms=chaos_ms).run()
        except AssertionError as error:
            failures.append((seed, str(error).splitlines()[0]))
    return count, failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20_000)
    parser.add_argument("--start", type=int, default=1_000_000)
    parser.add_argument("--chaos-ms", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=multiprocessing.cpu_count())
    parser.add_argument("--chunk", type=int, default=250)
    args = parser.parse_args(argv)
    chunks = [(first, min(args.chunk, args.start + args.seeds - first), args.chaos_ms)
              for first in range(args.start, args.start + args.seeds, args.chunk)]
    started, done, failures = time.monotonic(), 0, []
    with multiprocessing.Pool(args.workers) as pool:
        for count, failed in pool.imap_unordered(_run, chunks):
            done += count
            failures += failed
            for seed, line in failed:
                print(f"FAIL seed {seed}: {line}\n  replay: RAFT_SIM_SEED={seed} "
                      f"RAFT_SIM_CHAOS_MS={args.chaos_ms} pytest "
                      f"tests/unit/test_raft_simulation.py -k replay -s", flush=True)
    elapsed = time.monotonic() - started
    print(f"{done} seeds ({args.chaos_ms} ms of faults each) in {elapsed:.0f} s "
          f"({done / elapsed:.0f} seeds/s, {args.workers} workers): {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
