"""Small JSON metadata files, written atomically (see storage/checkpoint.py)."""

from __future__ import annotations

import json
from pathlib import Path

from .storage.checkpoint import write_atomically

__all__ = ["read_json", "write_atomically", "write_json"]


def write_json(path: Path, value: object) -> None:
    write_atomically(path, json.dumps(value, indent=1, sort_keys=True).encode())


def read_json(path: Path, default: object = None) -> object:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default
