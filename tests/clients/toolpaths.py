"""Import tools/paths.py whatever sys.path pytest set up (the repository root may not be
on it: tests/ is not a package)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tools import paths  # noqa: E402

__all__ = ["paths", "REPO_ROOT"]
