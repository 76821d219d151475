"""Start a consumer-group member of any client as a subprocess and follow its events.

The member programs (group_member.py for kafka-python and aiokafka, group_member.js for
kafkajs, GroupMember.java for the Java consumer) print one JSON line per event; see
group_member.py for the options and the events.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from .toolpaths import paths

HERE = Path(__file__).resolve().parent
GROUP_CLIENTS = ("kafka-python", "aiokafka", "kafkajs", "java")


def tools_problem(client: str) -> str | None:
    """Why a client's member cannot run here, or None."""
    try:
        if client == "kafkajs":
            paths.node_path()
            paths.node_modules_dir()
        elif client == "java":
            paths.java_path()
            paths.kafka_home()
    except Exception as exc:  # ToolMissing: say why
        return str(exc)
    return None


def member_argv(client: str, options: dict) -> tuple[list[str], dict | None]:
    text = json.dumps(options)
    if client in ("kafka-python", "aiokafka"):
        return [sys.executable, str(HERE / "group_member.py"), client, text], None
    if client == "kafkajs":
        env = {**os.environ, "NODE_PATH": str(paths.node_modules_dir())}
        return [paths.node_path(), str(HERE / "group_member.js"), text], env
    if client == "java":
        return [paths.java_path(), "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Xshare:auto", f"-Dlog4j2.configurationFile={paths.log4j_config('tools')}",
                "-cp", paths.kafka_classpath(), str(HERE / "GroupMember.java"), text], None
    raise ValueError(f"no group member for {client!r}")


class GroupMember:
    """One member process; `events` fills from its stdout in a thread."""

    def __init__(self, client: str, **options) -> None:
        argv, env = member_argv(client, options)
        self.client = client
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.events: list[dict] = []
        self.stderr: list[str] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith("{"):
                with self._lock:
                    self.events.append(json.loads(line))

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            self.stderr = (self.stderr + [line.rstrip()])[-30:]

    def snapshot(self) -> list[dict]:
        with self._lock:
            return list(self.events)

    @property
    def joined(self) -> bool:
        return any(e["event"] == "assigned" for e in self.snapshot())

    @property
    def assignment(self) -> set[int]:
        """What the member owns now, from its assigned and revoked events."""
        owned: set[int] = set()
        for e in self.snapshot():
            if e["event"] == "assigned":
                owned = set(e["partitions"])
            elif e["event"] == "revoked":
                owned -= set(e["partitions"])
        return owned

    def records(self) -> list[tuple[int, int]]:
        return [tuple(r) for e in self.snapshot() if e["event"] == "records"
                for r in e["records"]]

    def has(self, event: str) -> bool:
        return any(e["event"] == event for e in self.snapshot())

    def describe(self) -> str:
        return (f"{self.client} pid {self.proc.pid} rc {self.proc.poll()}: "
                f"events {self.snapshot()[-6:]} stderr {self.stderr[-8:]}")

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM: the member leaves the group and exits."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"member ignored SIGTERM: {self.describe()}") from None

    def kill(self) -> None:
        """SIGKILL: gone without leaving the group."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

