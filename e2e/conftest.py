"""e2e fixtures: kubectl against the current context (e2e/run.sh sets it to kind)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IMAGE = os.environ.get("BROOK_E2E_IMAGE", "brook:e2e")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("BROOK_E2E") != "1" or shutil.which("kubectl") is None:
        skip = pytest.mark.skip(reason="e2e runs through e2e/run.sh (kind, Docker)")
        for item in items:
            item.add_marker(skip)


def kubectl(*args: str, input: str | None = None, check: bool = True, timeout: float = 300) -> str:
    result = subprocess.run(["kubectl", *args], input=input, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {result.stderr}")
    return result.stdout


def get(namespace: str, kind: str, name: str) -> dict:
    return json.loads(kubectl("-n", namespace, "get", kind, name, "-o", "json"))


def wait_ready(namespace: str, kind: str, name: str, timeout: str = "300s") -> dict:
    kubectl("-n", namespace, "wait", "--for=condition=Ready", f"{kind}/{name}", f"--timeout={timeout}")
    return get(namespace, kind, name)


def kafka(namespace: str, script: str, timeout: float = 180) -> dict:
    """Run a confluent-kafka snippet in a pod of the Brook image (as an application would)."""
    name = f"client-{uuid.uuid4().hex[:6]}"
    kubectl("-n", namespace, "run", name, f"--image={IMAGE}", "--image-pull-policy=Never",
            "--restart=Never", "--command", "--", "python", "-c", script)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        phase = json.loads(kubectl("-n", namespace, "get", "pod", name, "-o", "json"))["status"].get("phase")
        if phase in ("Succeeded", "Failed"):
            break
        time.sleep(2)
    logs = kubectl("-n", namespace, "logs", name)
    kubectl("-n", namespace, "delete", "pod", name, "--wait=false")
    assert phase == "Succeeded", logs
    return json.loads(logs.strip().splitlines()[-1])


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false")
