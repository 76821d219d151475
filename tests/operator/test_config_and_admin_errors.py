from __future__ import annotations

import pytest

from brook.operator.config import OperatorConfig, OperatorConfigError
from brook.operator.kafka_admin import reason_from_error_name


def test_operator_config_from_env():
    c = OperatorConfig.from_env({"BROOK_WATCH_NAMESPACES": "a, b,,", "BROOK_CLUSTER_DOMAIN": "corp.",
                                 "BROOK_RESYNC_SECONDS": "5", "BROOK_BROKER_IMAGE": "img:1"})
    assert c.namespaces == ("a", "b") and c.cluster_domain == "corp"
    assert c.resync_seconds == 5 and c.broker_image == "img:1"
    d = OperatorConfig.from_env({})
    assert d.namespaces == () and d.cluster_domain == "cluster.local" and d.topic_delete_timeout_seconds == 300
    with pytest.raises(OperatorConfigError, match="BROOK_RESYNC_SECONDS"):
        OperatorConfig.from_env({"BROOK_RESYNC_SECONDS": "soon"})


def test_reason_from_kafka_error_names():
    assert reason_from_error_name("INVALID_REPLICATION_FACTOR") == "InvalidReplicationFactor"
    assert reason_from_error_name("POLICY_VIOLATION") == "PolicyViolation"
    assert reason_from_error_name("") == "KafkaError"
