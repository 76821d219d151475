"""KafkaCluster spec: parse and validate a resource body into frozen dataclasses.

Pure. The CRD's schema and CEL rules reject most invalid specs at the API server;
this module repeats the checks the operator relies on (an old CRD, or a body built
by hand in a test, must not produce broken objects) and adds the warnings a schema
cannot express (replication settings that do not fit the number of brokers).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from brook.operator.constants import MAX_CLUSTER_NAME

# Properties the operator sets per broker; a user value would break the cluster.
RESERVED_BROKER_PROPERTIES = frozenset(
    {
        "node.id",
        "broker.id",
        "process.roles",
        "listeners",
        "advertised.listeners",
        "listener.security.protocol.map",
        "inter.broker.listener.name",
        "controller.listener.names",
        "controller.quorum.voters",
        "controller.quorum.bootstrap.servers",
        "log.dir",
        "log.dirs",
        "brook.metrics.listener",
    }
)

_QUANTITY = re.compile(
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")


class SpecError(ValueError):
    """The spec cannot be reconciled; `problems` lists every reason, readable as is."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


def frozen_map(items: Mapping[Any, Any] | None = None) -> Mapping[Any, Any]:
    return MappingProxyType(dict(items or {}))


@dataclass(frozen=True)
class StorageSpec:
    size: str = "1Gi"
    storage_class_name: str | None = None
    delete_claim: bool = False


@dataclass(frozen=True)
class PodOptions:
    labels: Mapping[str, str] = field(default_factory=frozen_map)
    annotations: Mapping[str, str] = field(default_factory=frozen_map)
    node_selector: Mapping[str, str] = field(default_factory=frozen_map)
    priority_class_name: str | None = None
    termination_grace_period_seconds: int = 60
    tolerations: tuple[Mapping[str, Any], ...] = ()
    affinity: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ClusterSpec:
    name: str
    namespace: str
    replicas: int = 1
    image: str | None = None
    image_pull_policy: str | None = None
    storage: StorageSpec = field(default_factory=StorageSpec)
    config: Mapping[str, str] = field(default_factory=frozen_map)
    requests: Mapping[str, str] = field(default_factory=frozen_map)
    limits: Mapping[str, str] = field(default_factory=frozen_map)
    pod: PodOptions = field(default_factory=PodOptions)

    @property
    def voters(self) -> int:
        """Metadata controller voters: the first min(3, replicas) brokers (DESIGN.md)."""
        return min(3, self.replicas)


@dataclass(frozen=True)
class ParsedCluster:
    spec: ClusterSpec
    warnings: tuple[str, ...] = ()


def _int(value: Any, path: str, problems: list[str], default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(f"{path} must be an integer, not {value!r}")
        return default
    return value


def _str_map(value: Any, path: str, problems: list[str]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.append(f"{path} must be a map of strings")
        return {}
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(item, str):
            problems.append(f"{path}.{key} must be a string, not {item!r} (quote it in YAML)")
            continue
        out[str(key)] = item
    return out


def _quantity_map(value: Any, path: str, problems: list[str]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.append(f"{path} must be a map of quantities")
        return {}
    out = {}
    for key, item in value.items():
        text = str(item)
        if isinstance(item, bool) or not _QUANTITY.match(text):
            problems.append(f"{path}.{key}={item!r} is not a Kubernetes quantity (e.g. 500m, 2Gi)")
            continue
        out[str(key)] = text
    return out


def _parse_storage(raw: Any, problems: list[str]) -> StorageSpec:
    raw = raw or {}
    size = str(raw.get("size", "1Gi"))
    if not _QUANTITY.match(size):
        problems.append(f"spec.storage.size={size!r} is not a Kubernetes quantity (e.g. 10Gi)")
    storage_class = raw.get("storageClassName")
    return StorageSpec(
        size=size,
        storage_class_name=str(storage_class) if storage_class else None,
        delete_claim=bool(raw.get("deleteClaim", False)),
    )


def _parse_pod(raw: Any, problems: list[str]) -> PodOptions:
    raw = raw or {}
    tolerations = raw.get("tolerations") or []
    if not isinstance(tolerations, list) or not all(isinstance(t, Mapping) for t in tolerations):
        problems.append("spec.pod.tolerations must be a list of tolerations")
        tolerations = []
    affinity = raw.get("affinity")
    if affinity is not None and not isinstance(affinity, Mapping):
        problems.append("spec.pod.affinity must be an object")
        affinity = None
    grace = _int(raw.get("terminationGracePeriodSeconds"), "spec.pod.terminationGracePeriodSeconds", problems, 60)
    if grace < 0:
        problems.append("spec.pod.terminationGracePeriodSeconds must be >= 0")
    return PodOptions(
        labels=frozen_map(_str_map(raw.get("labels"), "spec.pod.labels", problems)),
        annotations=frozen_map(_str_map(raw.get("annotations"), "spec.pod.annotations", problems)),
        node_selector=frozen_map(_str_map(raw.get("nodeSelector"), "spec.pod.nodeSelector", problems)),
        priority_class_name=raw.get("priorityClassName") or None,
        termination_grace_period_seconds=grace,
        tolerations=tuple(MappingProxyType(dict(t)) for t in tolerations),
        affinity=MappingProxyType(dict(affinity)) if affinity else None,
    )


def _config_int(config: Mapping[str, str], key: str, problems: list[str]) -> int | None:
    if key not in config:
        return None
    try:
        return int(config[key].strip())
    except ValueError:
        problems.append(f"spec.config.{key}={config[key]!r} must be an integer")
        return None


def _warnings(spec: ClusterSpec, problems: list[str]) -> list[str]:
    warnings = []
    config = spec.config
    rf = _config_int(config, "default.replication.factor", problems)
    min_isr = _config_int(config, "min.insync.replicas", problems)
    for key in ("default.replication.factor", "offsets.topic.replication.factor",
                "transaction.state.log.replication.factor"):
        value = _config_int(config, key, problems) if key != "default.replication.factor" else rf
        if value is not None and value > spec.replicas:
            warnings.append(
                f"spec.config.{key}={value} exceeds spec.replicas={spec.replicas}: "
                "topics created with it cannot be placed until the cluster grows"
            )
    if min_isr is not None:
        effective_rf = rf if rf is not None else 1
        if min_isr > effective_rf:
            warnings.append(
                f"spec.config.min.insync.replicas={min_isr} exceeds the default replication factor "
                f"{effective_rf}: acks=all produce to topics using the defaults will fail with "
                "NOT_ENOUGH_REPLICAS"
            )
        elif min_isr == effective_rf and effective_rf > 1:
            warnings.append(
                f"spec.config.min.insync.replicas equals default.replication.factor ({min_isr}): "
                "any single broker restart blocks acks=all producers"
            )
    if spec.storage.delete_claim:
        warnings.append("spec.storage.deleteClaim=true: broker data is deleted with the cluster")
    return warnings


def parse_cluster(body: Mapping[str, Any]) -> ParsedCluster:
    """Parse a KafkaCluster body; raise SpecError listing every problem found."""
    meta = body.get("metadata") or {}
    name = str(meta.get("name") or "")
    namespace = str(meta.get("namespace") or "")
    raw = body.get("spec") or {}
    problems: list[str] = []
    if not _DNS_LABEL.match(name) or len(name) > MAX_CLUSTER_NAME:
        problems.append(
            f"metadata.name {name!r} must be a DNS label of at most {MAX_CLUSTER_NAME} characters "
            "(it prefixes the names of the cluster's Services and StatefulSet)"
        )
    replicas = _int(raw.get("replicas"), "spec.replicas", problems, 1)
    if replicas < 1:
        problems.append(f"spec.replicas={replicas}: must be at least 1")
    pull_policy = raw.get("imagePullPolicy") or None
    if pull_policy is not None and pull_policy not in _PULL_POLICIES:
        problems.append(f"spec.imagePullPolicy={pull_policy!r}: must be one of {', '.join(_PULL_POLICIES)}")
    config = _str_map(raw.get("config"), "spec.config", problems)
    reserved = sorted(RESERVED_BROKER_PROPERTIES & config.keys())
    if reserved:
        problems.append(
            f"spec.config must not set {', '.join(reserved)}: the operator sets them for each broker"
        )
    resources = raw.get("resources") or {}
    spec = ClusterSpec(
        name=name,
        namespace=namespace,
        replicas=replicas,
        image=raw.get("image") or None,
        image_pull_policy=pull_policy,
        storage=_parse_storage(raw.get("storage"), problems),
        config=frozen_map(config),
        requests=frozen_map(_quantity_map(resources.get("requests"), "spec.resources.requests", problems)),
        limits=frozen_map(_quantity_map(resources.get("limits"), "spec.resources.limits", problems)),
        pod=_parse_pod(raw.get("pod"), problems),
    )
    warnings = _warnings(spec, problems)
    if problems:
        raise SpecError(problems)
    return ParsedCluster(spec, tuple(warnings))
