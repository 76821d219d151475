"""`brook broker` as users start it: the installed console script, configured by a
server.properties file, or with no arguments at all; kcat sees it; SIGTERM exits 0."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.clients.toolpaths import paths
from tests.support.broker_process import free_port

BROOK = Path(sys.executable).parent / "brook"  # the console script of this virtualenv

pytestmark = pytest.mark.timeout(180)


def _start(args: list[str], cwd: Path, port: int) -> tuple[subprocess.Popen, Path]:
    log_path = cwd / "broker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(BROOK), "broker", *args], cwd=cwd, stdout=log,
                                stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"brook exited {proc.returncode}:\n{log_path.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, log_path
        except OSError:
            time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise AssertionError(f"brook did not listen on {port}:\n{log_path.read_text()}")


def _stop(proc: subprocess.Popen, log_path: Path) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"SIGTERM ignored:\n{log_path.read_text()}") from None


def _kcat(*args: str, data: bytes | None = None) -> bytes:
    proc = subprocess.run([paths.kcat_path(), *args], input=data, capture_output=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout


def _listed(bootstrap: str, topic: str) -> tuple[list[dict], dict]:
    """kcat's view of the cluster: its brokers, and `topic` once it has a leader."""
    deadline = time.monotonic() + 30
    while True:
        metadata = json.loads(_kcat("-L", "-J", "-b", bootstrap, "-t", topic))
        found = [t for t in metadata["topics"] if t["topic"] == topic and not t.get("error")]
        if found and all(p["leader"] >= 0 for p in found[0]["partitions"]):
            return metadata["brokers"], found[0]
        assert time.monotonic() < deadline, f"{topic} not listed: {metadata}"
        time.sleep(0.2)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _port_with_free_successor() -> int:
    """A client port whose successor is free too: with no CONTROLLER listener named,
    the broker puts its controller on the client port + 1."""
    for _ in range(100):
        port = free_port()
        if _port_free(port + 1):
            return port
    raise AssertionError("no free pair of adjacent ports on 127.0.0.1")


def test_broker_runs_from_a_server_properties_file(tmp_path):
    port = _port_with_free_successor()
    metrics_port = free_port()
    while metrics_port == port + 1:
        metrics_port = free_port()
    config = tmp_path / "server.properties"
    config.write_text("\n".join([
        "# as Kafka's own file would say it",
        "node.id=7",
        f"listeners=PLAINTEXT://127.0.0.1:{port}",
        f"log.dirs={tmp_path / 'kafka-logs'}",
        "num.partitions=3",
        "auto.create.topics.enable=true",
        f"brook.metrics.listener=127.0.0.1:{metrics_port}",
        "",
    ]))
    proc, log_path = _start(["--config", str(config)], tmp_path, port)
    try:
        bootstrap = f"127.0.0.1:{port}"
        _kcat("-P", "-b", bootstrap, "-t", "from-config", data=b"hello\n")
        brokers, topic = _listed(bootstrap, "from-config")
        assert brokers == [{"id": 7, "name": bootstrap}]
        assert len(topic["partitions"]) == 3  # num.partitions from the file
        assert (tmp_path / "kafka-logs" / "from-config-0").is_dir()  # log.dirs from the file
        with socket.create_connection(("127.0.0.1", metrics_port), timeout=5) as sock:
            sock.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            assert b"brook_" in sock.makefile("rb").read()
    finally:
        code = _stop(proc, log_path)
    assert code == 0, log_path.read_text()


def test_no_arguments_is_one_node_on_9092_with_data_in_brook_data(tmp_path):
    busy = [p for p in (9092, 9093, 9404) if not _port_free(p)]  # client, controller, metrics
    if busy:  # the same defaults are checked without sockets in tests/unit/test_config.py
        pytest.skip(f"ports {busy} in use on this machine")
    proc, log_path = _start([], tmp_path, 9092)
    try:
        _kcat("-P", "-b", "127.0.0.1:9092", "-t", "defaults", data=b"hello\n")
        brokers, topic = _listed("127.0.0.1:9092", "defaults")
        assert [b["name"] for b in brokers] == ["127.0.0.1:9092"]
        assert (tmp_path / "brook-data" / "defaults-0").is_dir()
    finally:
        code = _stop(proc, log_path)
    assert code == 0, log_path.read_text()
