"""Build the Kubernetes objects of a KafkaCluster. Pure: spec in, dicts out.

Objects (all owned by the KafkaCluster, applied server-side by the handler):
ServiceAccount, ConfigMap (broker properties), headless Service (stable DNS names
for each broker, published before the pods are ready so a quorum can form),
bootstrap Service (what clients connect to), PodDisruptionBudget, StatefulSet.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from brook.operator.cluster_spec import ClusterSpec
from brook.operator.config import OperatorConfig
from brook.operator.constants import (
    API_VERSION,
    CLUSTER_KIND,
    CLUSTER_LABEL,
    CONFIG_DIR,
    CONFIG_FILE,
    CONFIG_HASH_ANNOTATION,
    CONTROLLER_PORT,
    DATA_DIR,
    FIELD_MANAGER,
    KAFKA_PORT,
    LOG_DIRS,
    METRICS_PORT,
    POD_INDEX_LABEL,
)

BROKER_UID = 10001  # the image's non-root user (Dockerfile)


@dataclass(frozen=True)
class ClusterNames:
    """Names of the objects of one cluster, derived from the KafkaCluster's name."""

    cluster: str
    namespace: str

    @property
    def statefulset(self) -> str:
        return f"{self.cluster}-broker"

    @property
    def headless_service(self) -> str:
        return f"{self.cluster}-brokers"

    @property
    def bootstrap_service(self) -> str:
        return f"{self.cluster}-bootstrap"

    @property
    def config_map(self) -> str:
        return f"{self.cluster}-config"

    @property
    def service_account(self) -> str:
        return f"{self.cluster}-broker"

    @property
    def pdb(self) -> str:
        return f"{self.cluster}-broker"

    def pod(self, ordinal: int) -> str:
        return f"{self.statefulset}-{ordinal}"

    def pod_host(self, ordinal: int, domain: str) -> str:
        """DNS name of one broker through the headless Service."""
        return f"{self.pod(ordinal)}.{self.headless_service}.{self.namespace}.svc.{domain}"

    def bootstrap_servers(self, domain: str) -> str:
        return f"{self.bootstrap_service}.{self.namespace}.svc.{domain}:{KAFKA_PORT}"


def selector_labels(cluster: str) -> dict[str, str]:
    """Labels that select a cluster's broker pods (immutable in the StatefulSet)."""
    return {
        "app.kubernetes.io/name": "brook",
        "app.kubernetes.io/instance": cluster,
        "app.kubernetes.io/component": "broker",
    }


def common_labels(cluster: str) -> dict[str, str]:
    return {
        **selector_labels(cluster),
        "app.kubernetes.io/managed-by": FIELD_MANAGER,
        CLUSTER_LABEL: cluster,
    }


def owner_reference(owner: Mapping[str, Any]) -> dict[str, Any]:
    """The controller owner reference to a KafkaCluster body (needs metadata.uid)."""
    meta = owner["metadata"]
    return {
        "apiVersion": owner.get("apiVersion", API_VERSION),
        "kind": owner.get("kind", CLUSTER_KIND),
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def cluster_id_for(uid: str) -> str:
    """A stable Kafka cluster id (22-char URL-safe base64 of a UUID) from the resource uid."""
    raw = uuid.UUID(uid).bytes if _is_uuid(uid) else hashlib.sha256(uid.encode()).digest()[:16]
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _metadata(name: str, spec: ClusterSpec, owner: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": spec.namespace,
        "labels": common_labels(spec.name),
        "ownerReferences": [owner_reference(owner)],
    }


VOTERS_KEY = "controller.quorum.voters"


def parse_properties(text: str) -> dict[str, str]:
    """The key=value lines of a server.properties this module wrote."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")) and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def quorum_voters(spec: ClusterSpec, config: OperatorConfig, current: Mapping[str, str] | None) -> str:
    """controller.quorum.voters: the first min(3, replicas) brokers when the cluster is
    created, then kept as it is. It only bootstraps the metadata quorum; rewriting it
    when the cluster grows would give new brokers a quorum the running ones do not
    share. Brokers beyond the voters join as brokers only."""
    if current and current.get(VOTERS_KEY):
        return current[VOTERS_KEY]
    names = ClusterNames(spec.name, spec.namespace)
    return ",".join(
        f"{i}@{names.pod_host(i, config.cluster_domain)}:{CONTROLLER_PORT}" for i in range(spec.voters)
    )


def voter_ids(voters: str) -> list[int]:
    return [int(item.split("@", 1)[0]) for item in voters.split(",") if "@" in item]


def broker_properties(
    spec: ClusterSpec,
    owner: Mapping[str, Any],
    config: OperatorConfig,
    current: Mapping[str, str] | None = None,
) -> str:
    """server.properties shared by all brokers of the cluster (per-broker values are args).

    current: the properties the cluster runs with now (its ConfigMap), if any.
    """
    voters = quorum_voters(spec, config, current)
    # Internal topics default to what the quorum's brokers can hold; spec.config may
    # override. Derived from the (fixed) voters, so growing the cluster does not
    # change the configuration and restart every broker.
    internal_rf = max(1, len(voter_ids(voters)))
    generated = {
        "cluster.id": cluster_id_for(str(owner["metadata"]["uid"])),
        VOTERS_KEY: voters,
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": LOG_DIRS,
    }
    defaults = {
        "offsets.topic.replication.factor": str(internal_rf),
        "transaction.state.log.replication.factor": str(internal_rf),
        "transaction.state.log.min.isr": str(min(2, internal_rf)),
    }
    lines = [
        f"# Generated by {FIELD_MANAGER} for KafkaCluster {spec.namespace}/{spec.name}.",
        "# Do not edit: change the KafkaCluster's spec.config instead.",
        "# Per-broker values (node.id, listeners, advertised.listeners) are command-line overrides.",
    ]
    lines += [f"{k}={v}" for k, v in generated.items()]
    merged = {**defaults, **spec.config}
    lines += [f"{k}={_escape(v)}" for k, v in sorted(merged.items())]
    return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    """Java .properties escaping for values (backslashes and line breaks)."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def config_hash(properties: str) -> str:
    return hashlib.sha256(properties.encode()).hexdigest()[:16]


def broker_args(spec: ClusterSpec, config: OperatorConfig) -> list[str]:
    """Container args after the `brook` entry point. $(VAR) is expanded by the kubelet."""
    names = ClusterNames(spec.name, spec.namespace)
    advertised_host = (
        f"$(POD_NAME).{names.headless_service}.$(POD_NAMESPACE).svc.{config.cluster_domain}"
    )
    overrides = {
        "node.id": "$(BROOK_NODE_ID)",
        "listeners": f"PLAINTEXT://$(POD_IP):{KAFKA_PORT},CONTROLLER://$(POD_IP):{CONTROLLER_PORT}",
        "advertised.listeners": f"PLAINTEXT://{advertised_host}:{KAFKA_PORT}",
        "brook.metrics.listener": f"$(POD_IP):{METRICS_PORT}",
    }
    args = ["broker", "--config", f"{CONFIG_DIR}/{CONFIG_FILE}"]
    for key, value in overrides.items():
        args += ["--override", f"{key}={value}"]
    return args


def _env() -> list[dict[str, Any]]:
    def field_ref(name: str, path: str) -> dict[str, Any]:
        return {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}

    return [
        field_ref("POD_NAME", "metadata.name"),
        field_ref("POD_NAMESPACE", "metadata.namespace"),
        field_ref("POD_IP", "status.podIP"),
        field_ref("BROOK_NODE_ID", f"metadata.labels['{POD_INDEX_LABEL}']"),
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
    ]


def _probes() -> dict[str, Any]:
    kafka = {"tcpSocket": {"port": "kafka"}}
    return {
        # Log recovery after an unclean stop can take a while: allow 5 minutes.
        "startupProbe": {**kafka, "periodSeconds": 2, "failureThreshold": 150, "timeoutSeconds": 2},
        "readinessProbe": {**kafka, "periodSeconds": 5, "failureThreshold": 3, "timeoutSeconds": 2},
        "livenessProbe": {**kafka, "periodSeconds": 10, "failureThreshold": 6, "timeoutSeconds": 5},
    }


def _default_affinity(cluster: str) -> dict[str, Any]:
    """Prefer one broker per node (a node failure then takes one replica, not several)."""
    return {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": selector_labels(cluster)},
                    },
                }
            ]
        }
    }


def _thaw(value: Any) -> Any:
    """Plain dicts/lists from the read-only mappings of the spec."""
    if isinstance(value, Mapping):
        return {str(k): _thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_thaw(v) for v in value]
    return value


def build_service_account(spec: ClusterSpec, owner: Mapping[str, Any]) -> dict[str, Any]:
    names = ClusterNames(spec.name, spec.namespace)
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(names.service_account, spec, owner),
        # Brokers never call the Kubernetes API.
        "automountServiceAccountToken": False,
    }


def build_config_map(
    spec: ClusterSpec, owner: Mapping[str, Any], config: OperatorConfig,
    current: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    names = ClusterNames(spec.name, spec.namespace)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(names.config_map, spec, owner),
        "data": {CONFIG_FILE: broker_properties(spec, owner, config, current)},
    }


def _ports(include_all: bool) -> list[dict[str, Any]]:
    ports = [{"name": "kafka", "port": KAFKA_PORT, "targetPort": "kafka", "protocol": "TCP"}]
    if include_all:
        ports += [
            {"name": "controller", "port": CONTROLLER_PORT, "targetPort": "controller", "protocol": "TCP"},
            {"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics", "protocol": "TCP"},
        ]
    return ports


def build_headless_service(spec: ClusterSpec, owner: Mapping[str, Any]) -> dict[str, Any]:
    names = ClusterNames(spec.name, spec.namespace)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(names.headless_service, spec, owner),
        "spec": {
            "clusterIP": "None",
            # Brokers must find each other before any is ready (quorum formation).
            "publishNotReadyAddresses": True,
            "selector": selector_labels(spec.name),
            "ports": _ports(include_all=True),
        },
    }


def build_bootstrap_service(spec: ClusterSpec, owner: Mapping[str, Any]) -> dict[str, Any]:
    names = ClusterNames(spec.name, spec.namespace)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(names.bootstrap_service, spec, owner),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(spec.name),
            "ports": _ports(include_all=False),
        },
    }


def build_pdb(spec: ClusterSpec, owner: Mapping[str, Any]) -> dict[str, Any]:
    names = ClusterNames(spec.name, spec.namespace)
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(names.pdb, spec, owner),
        "spec": {
            # One broker down at a time: with RF=3/minISR=2 every partition stays writable.
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(spec.name)},
        },
    }


def build_statefulset(
    spec: ClusterSpec, owner: Mapping[str, Any], config: OperatorConfig,
    current: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    names = ClusterNames(spec.name, spec.namespace)
    properties = broker_properties(spec, owner, config, current)
    pod_labels = {**_thaw(spec.pod.labels), **common_labels(spec.name)}
    pod_annotations = {**_thaw(spec.pod.annotations), CONFIG_HASH_ANNOTATION: config_hash(properties)}
    resources: dict[str, Any] = {}
    if spec.requests:
        resources["requests"] = dict(spec.requests)
    if spec.limits:
        resources["limits"] = dict(spec.limits)
    container: dict[str, Any] = {
        "name": "broker",
        "image": spec.image or config.broker_image,
        "command": ["brook"],
        "args": broker_args(spec, config),
        "env": _env(),
        "ports": [
            {"name": "kafka", "containerPort": KAFKA_PORT, "protocol": "TCP"},
            {"name": "controller", "containerPort": CONTROLLER_PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
        ],
        **_probes(),
        "resources": resources,
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "data", "mountPath": DATA_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if spec.image_pull_policy:
        container["imagePullPolicy"] = spec.image_pull_policy
    pod_spec: dict[str, Any] = {
        "serviceAccountName": names.service_account,
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": spec.pod.termination_grace_period_seconds,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": BROKER_UID,
            "runAsGroup": BROKER_UID,
            "fsGroup": BROKER_UID,
            "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "affinity": _thaw(spec.pod.affinity) if spec.pod.affinity else _default_affinity(spec.name),
        "containers": [container],
        "volumes": [
            {"name": "config", "configMap": {"name": names.config_map}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
        ],
    }
    if spec.pod.node_selector:
        pod_spec["nodeSelector"] = dict(spec.pod.node_selector)
    if spec.pod.tolerations:
        pod_spec["tolerations"] = _thaw(spec.pod.tolerations)
    if spec.pod.priority_class_name:
        pod_spec["priorityClassName"] = spec.pod.priority_class_name
    claim_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": spec.storage.size}},
    }
    if spec.storage.storage_class_name:
        claim_spec["storageClassName"] = spec.storage.storage_class_name
    retention = "Delete" if spec.storage.delete_claim else "Retain"
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _metadata(names.statefulset, spec, owner),
        "spec": {
            "replicas": spec.replicas,
            "serviceName": names.headless_service,
            # All brokers start together: a quorum needs its voters up before any is ready.
            "podManagementPolicy": "Parallel",
            # The operator restarts brokers itself, ISR-aware (cluster_rolling.py).
            "updateStrategy": {"type": "OnDelete"},
            "selector": {"matchLabels": selector_labels(spec.name)},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": retention, "whenScaled": retention},
            "template": {
                "metadata": {"labels": pod_labels, "annotations": pod_annotations},
                "spec": pod_spec,
            },
            "volumeClaimTemplates": [
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": "data", "labels": selector_labels(spec.name)},
                    "spec": claim_spec,
                }
            ],
        },
    }


def build_cluster_objects(
    spec: ClusterSpec, owner: Mapping[str, Any], config: OperatorConfig,
    current: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Every object of the cluster, in the order they are applied.

    current: the properties in the cluster's ConfigMap now (None when it has none yet).
    """
    return [
        build_service_account(spec, owner),
        build_config_map(spec, owner, config, current),
        build_headless_service(spec, owner),
        build_bootstrap_service(spec, owner),
        build_pdb(spec, owner),
        build_statefulset(spec, owner, config, current),
    ]
