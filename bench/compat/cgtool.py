"""Kafka's own `kafka-consumer-groups` (ConsumerGroupCommand), run through tools/paths.py,
and a parser that turns its text output into comparable rows."""

from __future__ import annotations

import re
import subprocess

from bench import REPO_ROOT  # noqa: F401
from tools import paths

_WS = re.compile(r"\s+")
_PORT = re.compile(r"(\d+\.\d+\.\d+\.\d+):\d+")


def run(bootstrap: str, *args: str, timeout: float = 90.0) -> dict:
    """Run kafka-consumer-groups; return the parsed output (see parse)."""
    cmd = paths.java_tool_command("consumer-groups", "--bootstrap-server", bootstrap, *args)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"exit": "timeout", "rows": [], "notes": []}
    return parse(proc.stdout, proc.stderr, proc.returncode)


def parse(stdout: str, stderr: str = "", exit_code: int = 0) -> dict:
    """{"exit": code, "rows": [{COLUMN: value}], "notes": [other lines]}.

    Tables start with a header line of upper-case column names (GROUP TOPIC ...); member
    ids are replaced by "<set>" (they differ per run) unless empty or "-", and the ports
    of host:port values by "<port>".
    Log lines of the JVM (timestamps, WARN) are dropped from the notes."""
    rows: list[dict] = []
    notes: list[str] = []
    header: list[str] | None = None
    for line in (stdout + "\n" + stderr).splitlines():
        text = line.strip()
        if not text:
            header = None
            continue
        if text.startswith("[") and ("WARN" in text or "ERROR" in text or "INFO" in text):
            continue
        if text.startswith("at ") or text.startswith("Caused by") or text.startswith("java."):
            continue
        cols = _WS.split(text)
        if cols and cols[0] == "GROUP" and all(c.isupper() or "-" in c or "#" in c for c in cols):
            header = cols
            continue
        if header is not None and len(cols) == len(header):
            row = dict(zip(header, cols, strict=True))
            if row.get("CONSUMER-ID") not in (None, "-", ""):
                row["CONSUMER-ID"] = "<set>"
            rows.append({k: _PORT.sub(r"\1:<port>", v) for k, v in row.items()})
            continue
        notes.append(_PORT.sub(r"\1:<port>", text))
    return {"exit": exit_code, "rows": rows, "notes": notes}
