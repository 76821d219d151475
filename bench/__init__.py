"""Side-by-side measurements of Brook and Apache Kafka on the same machine.

    python -m bench                 throughput, latency, memory and start-up (see bench/README.md)
    python -m bench.compat          the compatibility suite -> docs/compatibility.md
    python -m bench.profile         py-spy profiles of Brook under the produce/consume loads

Everything runs on loopback; brokers are started (and stopped, by PID) by the run itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # `tools` and `tests` are imported from the checkout
    sys.path.insert(0, str(REPO_ROOT))

RESULTS_DIR = REPO_ROOT / "bench" / "results"
