"""Names the operator shares with its CRDs, chart and tests: group, labels, ports."""

from __future__ import annotations

GROUP = "brook.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CLUSTER_KIND = "KafkaCluster"
CLUSTER_PLURAL = "kafkaclusters"
TOPIC_KIND = "Topic"
TOPIC_PLURAL = "topics"

# Every object the operator writes is applied server-side under this one manager.
FIELD_MANAGER = "brook-operator"

# Annotations a user sets.
PAUSE_ANNOTATION = f"{GROUP}/pause-reconciliation"
# Topic deletion policy: "delete" (default) deletes the topic from Kafka when the
# Topic resource is deleted; "orphan" leaves it there. Also the escape hatch for a
# Topic whose deletion waits for an unreachable cluster.
DELETION_POLICY_ANNOTATION = f"{GROUP}/deletion-policy"

# Annotations and labels the operator sets.
CONFIG_HASH_ANNOTATION = f"{GROUP}/config-hash"
CLUSTER_LABEL = f"{GROUP}/cluster"
FINALIZER = f"{GROUP}/finalizer"

# Ports of a broker (DESIGN.md, Broker).
KAFKA_PORT = 9092
CONTROLLER_PORT = 9093  # gRPC: controller quorum, heartbeats, grpc.health.v1
METRICS_PORT = 9404

# Paths inside the broker container.
CONFIG_DIR = "/etc/brook"
CONFIG_FILE = "server.properties"
DATA_DIR = "/var/lib/brook"
LOG_DIRS = f"{DATA_DIR}/data"  # a subdirectory: volume roots may hold lost+found

# The brokers' own topics. Only these are "internal": a user topic may start with "__"
# too (Debezium's heartbeats, say) and is treated like any other.
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})

# The StatefulSet controller labels each pod with its ordinal (Kubernetes >= 1.28).
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"

# Kubernetes name limits that the derived names must respect: a StatefulSet's pods
# get a controller-revision-hash label "<statefulset>-<10 chars>" (<= 63).
MAX_CLUSTER_NAME = 40
