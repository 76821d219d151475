"""A long-lived helper process (Java or Node client) spoken to over stdin/stdout.

One process per driver instance, started on first use and reused for every call, so a
test session pays the JVM/Node start-up once. The protocol is in wire.py.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import tempfile
import threading
import time

from . import wire
from .base import ClientDriver, KafkaClientError, ToolUnavailable, TopicDescription, user_topics
from .toolpaths import paths

_EOF = object()


class HelperProcess:
    def __init__(self, argv: list[str], env: dict[str, str] | None = None, name: str = "helper",
                 cwd: str | None = None):
        self.argv = argv
        self.env = env
        self.name = name
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None
        self._lines: queue.Queue = queue.Queue()
        self._stderr = None
        self._lock = threading.Lock()

    def _start(self) -> None:
        self._stderr = tempfile.TemporaryFile(prefix=f"brook-{self.name}-")
        self._lines = queue.Queue()
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            env=self.env, cwd=self.cwd, text=True, encoding="utf-8", bufsize=1 << 16)
        threading.Thread(target=self._pump, args=(self.proc, self._lines), daemon=True).start()

    @staticmethod
    def _pump(proc: subprocess.Popen, lines: queue.Queue) -> None:
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(_EOF)

    def stderr_tail(self, n: int = 30) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace")
        self._stderr.seek(0, os.SEEK_END)
        return "\n".join(text.splitlines()[-n:])

    def call(self, request: dict, data_lines: list[str] | None = None,
             timeout: float = 120.0) -> tuple[list[str], dict]:
        """Send one request; return (data lines, status dict). Raises KafkaClientError for
        an error status, TimeoutError (after killing the helper) on timeout."""
        with self._lock:
            if self.proc is None or self.proc.poll() is not None:
                self._start()
            payload = json.dumps(request) + "\n"
            if data_lines:
                payload += "\n".join(data_lines) + "\n"
            try:
                self.proc.stdin.write(payload)
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError) as e:
                raise RuntimeError(f"{self.name} helper died: {e}\n{self.stderr_tail()}") from e
            deadline = time.monotonic() + timeout
            data: list[str] = []
            while True:
                left = deadline - time.monotonic()
                try:
                    line = self._lines.get(timeout=max(0.0, left))
                except queue.Empty:
                    self.kill()
                    raise TimeoutError(f"{self.name} helper: no answer to {request.get('op')} "
                                       f"within {timeout:.0f}s\n{self.stderr_tail()}") from None
                if line is _EOF:
                    code = self.proc.wait()
                    raise RuntimeError(f"{self.name} helper exited ({code}) during "
                                       f"{request.get('op')}:\n{self.stderr_tail()}")
                if line.startswith("#"):
                    status = json.loads(line[1:])
                    if not status.get("ok"):
                        err = status.get("error") or {}
                        raise KafkaClientError(err.get("name") or "UNKNOWN", err.get("code"),
                                               err.get("message") or "", self.name)
                    return data, status
                data.append(line)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # EOF: the helper exits
                self.proc.wait(timeout=timeout)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self.proc = None


class HelperDriver(ClientDriver):
    """A ClientDriver whose operations run in a HelperProcess (see wire.py)."""

    call_timeout = 180.0

    def _check_tools(self) -> None:
        """Look up the cached tools the helper needs; raises paths.ToolMissing."""
        raise NotImplementedError

    def _helper_argv(self) -> tuple[list[str], dict[str, str] | None]:
        raise NotImplementedError

    def __init__(self):
        self._helper: HelperProcess | None = None

    def unavailable_reason(self):
        try:
            self._check_tools()
        except paths.ToolMissing as e:
            return str(e)
        return None

    def _call(self, request, data_lines=None, timeout=None):
        if self._helper is None:
            reason = self.unavailable_reason()
            if reason:
                raise ToolUnavailable(reason)
            argv, env = self._helper_argv()
            self._helper = HelperProcess(argv, env=env, name=self.name)
        return self._helper.call(request, data_lines, timeout or self.call_timeout)

    def close(self):
        if self._helper is not None:
            self._helper.close()
            self._helper = None

    def produce(self, bootstrap, topic, records, compression="none", **extra):
        self._check_compression(compression)
        lines = [wire.encode_produce_record(r) for r in records]
        data, _ = self._call({"op": "produce", "bootstrap": bootstrap, "topic": topic,
                              "compression": compression, "count": len(lines), **extra},
                             lines)
        return [wire.decode_ack(x) for x in data]

    def consume(self, bootstrap, topic, partitions=None, expected_count=0, timeout_s=30.0):
        data, _ = self._call({"op": "consume", "bootstrap": bootstrap, "topic": topic,
                              "partitions": partitions, "expected": expected_count,
                              "timeout_ms": int(timeout_s * 1000)}, timeout=timeout_s + 60)
        return [wire.decode_consumed_record(x) for x in data]

    def create_topic(self, bootstrap, name, partitions, config=None, validate_only=False,
                     replication_factor=None):
        self._call({"op": "create_topic", "bootstrap": bootstrap, "topic": name,
                    "partitions": partitions, "replication_factor": replication_factor,
                    "config": dict(config or {}), "validate_only": validate_only})

    def describe_topic(self, bootstrap, name):
        _, st = self._call({"op": "describe_topic", "bootstrap": bootstrap, "topic": name})
        return TopicDescription(name=name, partitions=st["partitions"],
                                replication_factor=st["replication_factor"], configs=st["configs"])

    def alter_topic_config(self, bootstrap, name, changes):
        self._call({"op": "alter_topic_config", "bootstrap": bootstrap, "topic": name,
                    "changes": dict(changes)})

    def create_partitions(self, bootstrap, name, total):
        self._call({"op": "create_partitions", "bootstrap": bootstrap, "topic": name, "total": total})

    def delete_topic(self, bootstrap, name):
        self._call({"op": "delete_topic", "bootstrap": bootstrap, "topic": name})

    def list_topics(self, bootstrap):
        _, st = self._call({"op": "list_topics", "bootstrap": bootstrap})
        return user_topics(st["topics"])
