"""The YAML in examples/ parses into valid specs, without warnings."""

from __future__ import annotations

from pathlib import Path

import yaml

from brook.operator.cluster_spec import parse_cluster
from brook.operator.topic_spec import parse_topic

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_examples_parse():
    seen = set()
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            doc["metadata"].setdefault("namespace", "default")
            if doc["kind"] == "KafkaCluster":
                assert parse_cluster(doc).warnings == ()
            else:
                parse_topic(doc)
            seen.add((doc["kind"], doc["metadata"]["name"]))
    assert {("KafkaCluster", "events"), ("Topic", "orders")} <= seen
