"""Driver for kcat (librdkafka's command-line producer/consumer, from Debian packages).

kcat has defaults only (no -X), plus -z <codec> for compression. What it cannot do:

* per-record timestamps: kcat -P cannot set them; librdkafka stamps each record with
  the wall clock when it is produced. The consumer prints them (%T), and the workload
  check holds them to the window around the produce call (workload.produce_stamped)
  and to send order within a partition;
* per-record headers: -H applies to a whole invocation, so records are sent in runs of
  consecutive records that share (partition, headers); many different header sets mean
  many kcat runs, so more than MAX_RUNS runs raise Unsupported;
* header values must be text without NUL, and its consumer prints them as
  ``n=v,n2=v2``, so values containing ``,`` or ``=`` do not round-trip; no null values;
* keys/values: with -Z (used only when a value is null) empty means null; a record with
  no key and an empty value cannot be sent (kcat skips empty input messages);
* acks: kcat prints delivery reports (-vv) as "partition P (offset O)" without saying
  which input line they belong to. Records with an explicit partition or a non-empty
  key are paired exactly (librdkafka's default partitioner, consistent_random, is
  CRC32(key) % partitions); records without key and partition are spread at random,
  and get the remaining acks in delivery order (exact_acks = False);
* no admin API: only list_topics() (kcat -L).

Consume uses kcat's simple consumer (-C, no -G: manual assignment, no group) from
``-o beginning``, with a length-prefixed output format so keys/values can be any bytes.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import threading
import time
import zlib

from .base import ClientDriver, KafkaClientError, ToolUnavailable, Unsupported, user_topics
from .toolpaths import paths

MAX_RUNS = 64
_DR = re.compile(rb"Message delivered to partition (-?\d+) \(offset (-?\d+)\)")
_FAILED = re.compile(rb"(Delivery failed for message|ERROR): (.*)")


def _token(records_bytes: list[bytes]) -> str:
    while True:
        tok = "Brk" + secrets.token_hex(12)
        btok = tok.encode()
        if not any(btok in b for b in records_bytes):
            return tok


class KcatDriver(ClientDriver):
    name = "kcat"
    supports_timestamps = False
    supports_per_record_headers = False
    supports_binary_headers = False
    supports_duplicate_headers = True
    supports_null_vs_empty = False
    exact_acks = False
    supports_admin = False
    supports_list_topics = True
    incremental_alter_configs = False
    supports_validate_only = False

    def unavailable_reason(self):
        try:
            paths.kcat_path()
        except paths.ToolMissing as e:
            return str(e)
        return None

    def _kcat(self) -> str:
        try:
            return paths.kcat_path()
        except paths.ToolMissing as e:
            raise ToolUnavailable(str(e)) from None

    # ------------------------------------------------------------------ metadata
    def _metadata(self, bootstrap: str, topic: str | None = None) -> dict:
        argv = [self._kcat(), "-b", bootstrap, "-L", "-J"]
        if topic:
            argv += ["-t", topic]
        proc = subprocess.run(argv, capture_output=True, timeout=60)
        if proc.returncode != 0:
            raise KafkaClientError("KCAT_ERROR", None, proc.stderr.decode(errors="replace").strip(), self.name)
        return json.loads(proc.stdout)

    def _partition_count(self, bootstrap: str, topic: str) -> int | None:
        md = self._metadata(bootstrap, topic)
        for t in md.get("topics", []):
            if t["topic"] == topic and not t.get("error"):
                return len(t["partitions"])
        return None  # unknown (auto-creation on produce may still create it)

    def list_topics(self, bootstrap):
        return user_topics(t["topic"] for t in self._metadata(bootstrap)["topics"])

    # ------------------------------------------------------------------ produce
    def produce(self, bootstrap, topic, records, compression="none"):
        self._check_compression(compression)
        for r in records:
            for name, value in r.get("headers") or ():
                if value is None or b"\x00" in value or "=" in name:
                    raise Unsupported("kcat: header values must be non-null text without NUL, "
                                      "names without '='")
        runs: list[list[int]] = []
        last_key = object()
        for i, r in enumerate(records):
            key = (r.get("partition"), tuple(r.get("headers") or ()))
            if key != last_key:
                runs.append([])
                last_key = key
            runs[-1].append(i)
        if len(runs) > MAX_RUNS:
            raise Unsupported(f"kcat: {len(runs)} runs of records with different headers/partition "
                              f"(max {MAX_RUNS}); kcat sets headers per invocation")
        n_partitions = None
        if any(records[i].get("partition") is None for run in runs for i in run):
            n_partitions = self._partition_count(bootstrap, topic)
        acks: list = [None] * len(records)
        for run in runs:
            self._produce_run(bootstrap, topic, records, run, compression, n_partitions, acks)
        return acks

    def _produce_run(self, bootstrap, topic, records, run, compression, n_partitions, acks):
        recs = [records[i] for i in run]
        first = recs[0]
        use_null = any(r.get("value") is None for r in recs)
        for r in recs:
            key, value = r.get("key"), r.get("value")
            if use_null and (key == b"" or value == b""):
                raise Unsupported("kcat: null and empty keys/values in the same run (-Z makes empty null)")
            if key is None and value == b"":
                raise Unsupported("kcat: a record without key and with an empty value is skipped by kcat")
        blobs = [r.get("key") or b"" for r in recs] + [r.get("value") or b"" for r in recs]
        kdelim = _token(blobs)
        mdelim = _token(blobs + [kdelim.encode()])
        kd, md = kdelim.encode(), mdelim.encode()
        payload = b"".join(
            ((r["key"] + kd) if r.get("key") is not None else b"") + (r.get("value") or b"") + md
            for r in recs)
        argv = [self._kcat(), "-P", "-b", bootstrap, "-t", topic, "-K", kdelim, "-D", mdelim, "-vv"]
        if first.get("partition") is not None:
            argv += ["-p", str(first["partition"])]
        if compression != "none":
            argv += ["-z", compression]
        if use_null:
            argv.append("-Z")
        for name, value in first.get("headers") or ():
            argv += ["-H", f"{name}={value.decode('utf-8', 'surrogateescape')}"]
        proc = subprocess.run(argv, input=payload, capture_output=True, timeout=300)
        drs = [(int(p), int(o)) for p, o in _DR.findall(proc.stderr)]
        failed = _FAILED.search(proc.stderr)
        if proc.returncode != 0 or failed or len(drs) != len(recs):
            detail = failed.group(2).decode(errors="replace") if failed else proc.stderr.decode(errors="replace")[-2000:]
            raise KafkaClientError("KCAT_PRODUCE_FAILED", None,
                                   f"exit {proc.returncode}, {len(drs)}/{len(recs)} delivered: {detail}",
                                   self.name)
        self._pair_acks(recs, run, drs, n_partitions, acks)

    @staticmethod
    def _predict(r: dict, n_partitions: int | None) -> int | None:
        if r.get("partition") is not None:
            return r["partition"]
        if r.get("key") and n_partitions:
            return zlib.crc32(r["key"]) % n_partitions  # librdkafka consistent_random
        return None

    @staticmethod
    def _pair_acks(recs, run, drs, n_partitions, acks):
        by_partition: dict[int, list[int]] = {}
        for p, o in drs:
            by_partition.setdefault(p, []).append(o)
        predicted = [KcatDriver._predict(r, n_partitions) for r in recs]
        want: dict[int, int] = {}
        for p in predicted:
            if p is not None:
                want[p] = want.get(p, 0) + 1
        if all(len(by_partition.get(p, ())) >= n for p, n in want.items()):
            # exact for predicted records (delivery order within a partition = send order)
            pos = {p: 0 for p in by_partition}
            taken = set()
            for j, p in enumerate(predicted):
                if p is not None:
                    acks[run[j]] = (p, by_partition[p][pos[p]])
                    taken.add((p, pos[p]))
                    pos[p] += 1
            rest = iter([(p, o) for p, offs in by_partition.items()
                         for k, o in enumerate(offs) if (p, k) not in taken])
            for j, p in enumerate(predicted):
                if p is None:
                    acks[run[j]] = next(rest)
        else:  # prediction failed (e.g. unknown partition count): delivery order
            for j, dr in enumerate(drs):
                acks[run[j]] = dr

    # ------------------------------------------------------------------ consume
    def consume(self, bootstrap, topic, partitions=None, expected_count=0, timeout_s=30.0):
        sentinel = "Brk" + secrets.token_hex(12)
        fmt = "%p\\t%o\\t%T\\t%K\\t%S\\t%k%s%h\\t" + sentinel + "\\n"
        base = [self._kcat(), "-C", "-u", "-b", bootstrap, "-t", topic, "-o", "beginning", "-f", fmt]
        if partitions is None:
            argvs = [base + (["-c", str(expected_count)] if expected_count > 0 else [])]
        else:
            argvs = [base + ["-p", str(p)] for p in partitions]
        if expected_count <= 0:
            return []
        readers = [_KcatReader(argv, sentinel.encode()) for argv in argvs]
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                records = [r for reader in readers for r in reader.records]
                if len(records) >= expected_count or time.monotonic() > deadline:
                    break
                dead = [rd for rd in readers if rd.finished() and rd.returncode != 0]
                if dead:
                    raise KafkaClientError("KCAT_CONSUME_FAILED", None, dead[0].stderr_text(), self.name)
                if all(rd.finished() for rd in readers):
                    break
                time.sleep(0.02)
        finally:
            for rd in readers:
                rd.stop()
        return [r for reader in readers for r in reader.records]


class _KcatReader:
    """Runs one kcat consumer and parses its output incrementally."""

    def __init__(self, argv: list[str], sentinel: bytes):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.sentinel = b"\t" + sentinel + b"\n"
        self.records: list[dict] = []
        self._buf = bytearray()
        self._err = bytearray()
        self._done = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self):
        fd = self.proc.stdout
        while True:
            chunk = fd.read1(1 << 16)
            if not chunk:
                break
            self._buf += chunk
            self._parse()
        self.proc.wait()
        self._done.set()

    def _read_err(self):
        for chunk in iter(lambda: self.proc.stderr.read1(1 << 16), b""):
            self._err += chunk

    def _parse(self):
        buf = self._buf
        pos = 0
        while True:
            fields_end = pos
            tabs = 0
            while tabs < 5:
                t = buf.find(b"\t", fields_end)
                if t < 0:
                    break
                tabs += 1
                fields_end = t + 1
            if tabs < 5:
                break
            p, off, ts, klen, vlen = bytes(buf[pos:fields_end - 1]).split(b"\t")
            klen_i, vlen_i = int(klen), int(vlen)
            body = fields_end
            after = body + max(klen_i, 0) + max(vlen_i, 0)
            end = buf.find(self.sentinel, after)
            if end < 0:
                break
            key = bytes(buf[body:body + klen_i]) if klen_i >= 0 else None
            value = bytes(buf[body + max(klen_i, 0):after]) if vlen_i >= 0 else None
            self.records.append({
                "partition": int(p), "offset": int(off), "timestamp_ms": int(ts),
                "key": key, "value": value, "headers": _parse_headers(bytes(buf[after:end])),
            })
            pos = end + len(self.sentinel)
        del buf[:pos]

    def finished(self) -> bool:
        return self._done.is_set()

    @property
    def returncode(self):
        return self.proc.returncode

    def stderr_text(self) -> str:
        return bytes(self._err).decode(errors="replace")[-2000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._done.wait(timeout=5)


def _parse_headers(text: bytes) -> list[tuple[str, bytes | None]]:
    if not text:
        return []
    out = []
    for item in text.split(b","):
        name, _, value = item.partition(b"=")
        out.append((name.decode("utf-8", "replace"), value))
    return out
