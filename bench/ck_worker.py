"""confluent-kafka load generators, run as a subprocess by the benchmarks:

    python -m bench.ck_worker '{"mode": "produce", "bootstrap": ..., ...}'

prints one JSON line with the result. A separate process keeps the client's CPU and
memory out of the harness (which samples the broker meanwhile) and gives every run a
fresh client. Modes:

produce  {topic, records, size, acks, compression}     -> seconds, records, bytes, errors
consume  {topic, records, partitions}                  -> seconds, records, bytes
e2e      {topic, rate, seconds, warmup, size, acks}    -> latency percentiles (ms), rate
"""

from __future__ import annotations

import json
import random
import struct
import sys
import threading
import time
import uuid


def payloads(size: int, count: int = 64) -> list[bytes]:
    """Random upper-case letters, as Kafka's ProducerPerformance sends (so codecs see the
    same kind of data in both tools)."""
    rng = random.Random(42)
    return [bytes(rng.choices(range(65, 91), k=size)) for _ in range(count)]


def produce(spec: dict) -> dict:
    from confluent_kafka import Producer
    conf = {"bootstrap.servers": spec["bootstrap"], "acks": str(spec.get("acks", "1")),
            "log_level": 0}
    if spec.get("compression", "none") != "none":
        conf["compression.type"] = spec["compression"]
    p = Producer(conf)
    n, values = spec["records"], payloads(spec["size"])
    errors = [0]

    def on_delivery(err, _msg):
        if err is not None:
            errors[0] += 1

    topic = spec["topic"]
    t0 = time.perf_counter()
    for i in range(n):
        while True:
            try:
                p.produce(topic, values[i & 63], on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.005)
        if i & 1023 == 0:
            p.poll(0)
    left = p.flush(300)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "records": n - left, "bytes": (n - left) * spec["size"],
            "errors": errors[0] + left}


def consume(spec: dict) -> dict:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": spec["bootstrap"], "group.id": f"bench-{uuid.uuid4().hex}",
                  "enable.auto.commit": False, "log_level": 0})
    want = spec["records"]
    got = nbytes = 0
    t0 = time.perf_counter()
    c.assign([TopicPartition(spec["topic"], p, OFFSET_BEGINNING)
              for p in range(spec.get("partitions", 1))])
    deadline = time.monotonic() + spec.get("timeout", 300)
    while got < want and time.monotonic() < deadline:
        for msg in c.consume(num_messages=10_000, timeout=1.0):
            if msg.error() is None:
                got += 1
                nbytes += len(msg.value())
    seconds = time.perf_counter() - t0
    c.close()
    return {"seconds": seconds, "records": got, "bytes": nbytes}


def e2e(spec: dict) -> dict:
    """Produce at a fixed rate (records stamped with time.monotonic_ns()), consume them in
    the same process, and report produce->consume latency after a warm-up."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    bs, topic = spec["bootstrap"], spec["topic"]
    rate, seconds, warmup = spec["rate"], spec["seconds"], spec.get("warmup", 1.0)
    pad = b"x" * max(0, spec["size"] - 8)
    c = Consumer({"bootstrap.servers": bs, "group.id": f"bench-{uuid.uuid4().hex}",
                  "enable.auto.commit": False, "log_level": 0})
    tp = TopicPartition(topic, 0)
    _low, high = c.get_watermark_offsets(tp, timeout=30)
    c.assign([TopicPartition(topic, 0, high)])
    p = Producer({"bootstrap.servers": bs, "acks": str(spec.get("acks", "all")), "log_level": 0})
    total = int(rate * seconds)
    state = {"sent": 0, "start": 0, "errors": 0}

    def on_delivery(err, _msg):
        if err is not None:
            state["errors"] += 1

    def producer_loop():
        start = time.monotonic()
        state["start"] = time.monotonic_ns()
        sent = 0
        while sent < total:
            due = min(total, int((time.monotonic() - start) * rate) + 1)
            while sent < due:
                try:
                    p.produce(topic, struct.pack(">q", time.monotonic_ns()) + pad,
                              on_delivery=on_delivery)
                    sent += 1
                except BufferError:
                    p.poll(0.001)
            p.poll(0)
            time.sleep(0.0005)
        state["sent"] = sent
        state["produce_seconds"] = time.monotonic() - start
        p.flush(60)

    # A few unmeasured records first, so connections and metadata are warm on both sides.
    for _ in range(10):
        p.produce(topic, struct.pack(">q", 0) + pad)
    p.flush(30)
    got_warm = 0
    t_end = time.monotonic() + 30
    while got_warm < 10 and time.monotonic() < t_end:
        got_warm += len(c.consume(num_messages=100, timeout=0.5))

    thread = threading.Thread(target=producer_loop, daemon=True)
    thread.start()
    lat: list[float] = []
    received = 0
    cutoff = None
    deadline = time.monotonic() + seconds + 60
    while time.monotonic() < deadline:
        msgs = c.consume(num_messages=1000, timeout=0.1)
        now = time.monotonic_ns()
        if cutoff is None and state["start"]:
            cutoff = state["start"] + int(warmup * 1e9)
        for m in msgs:
            if m.error() is not None:
                continue
            (sent_ns,) = struct.unpack_from(">q", m.value())
            received += 1
            if cutoff is not None and sent_ns >= cutoff:
                lat.append((now - sent_ns) / 1e6)
        if not thread.is_alive() and received >= total:
            break
    thread.join(timeout=60)
    c.close()
    lat.sort()

    def pct(q):
        return lat[min(len(lat) - 1, int(q * len(lat)))] if lat else None

    return {"p50_ms": pct(0.50), "p99_ms": pct(0.99), "p999_ms": pct(0.999),
            "max_ms": lat[-1] if lat else None, "measured": len(lat), "sent": total,
            "received": received, "rate": rate, "errors": state["errors"],
            "produce_seconds": state.get("produce_seconds")}


def main() -> None:
    spec = json.loads(sys.argv[1])
    fn = {"produce": produce, "consume": consume, "e2e": e2e}[spec["mode"]]
    print(json.dumps(fn(spec)), flush=True)


if __name__ == "__main__":
    main()
