"""Kubernetes API calls of the operator (side effects), all through `kubernetes`.

Every write is a server-side apply under one field manager, so the operator owns
exactly the fields it sets and never fights another manager (kubectl, Argo CD,
Flux) over the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes import client, config

from brook.operator.constants import FIELD_MANAGER, GROUP, VERSION

log = logging.getLogger("brook.operator.kube")
APPLY = "application/apply-patch+yaml"


class KubeError(Exception):
    def __init__(self, status: int | None, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def load_config() -> None:
    """In-cluster when running in a pod, else $KUBECONFIG / ~/.kube/config."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()


def _message(exc: client.ApiException) -> str:
    import json

    try:
        body = json.loads(exc.body or "{}")
        return str(body.get("message") or exc.reason)
    except (ValueError, TypeError):
        return str(exc.reason)


class Kube:
    def __init__(self, api_client: client.ApiClient | None = None):
        self.api = api_client or client.ApiClient()
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.policy = client.PolicyV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self._appliers: dict[tuple[str, str], Callable[..., Any]] = {
            ("v1", "ConfigMap"): self.core.patch_namespaced_config_map,
            ("v1", "Service"): self.core.patch_namespaced_service,
            ("v1", "ServiceAccount"): self.core.patch_namespaced_service_account,
            ("apps/v1", "StatefulSet"): self.apps.patch_namespaced_stateful_set,
            ("policy/v1", "PodDisruptionBudget"): self.policy.patch_namespaced_pod_disruption_budget,
        }

    def _dict(self, model: Any) -> dict[str, Any]:
        return model if isinstance(model, dict) else self.api.sanitize_for_serialization(model)

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply of one namespaced object; force: we own what we send."""
        key = (obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        try:
            patch = self._appliers[key]
        except KeyError:
            raise KubeError(None, f"no applier for {key}") from None
        try:
            result = patch(
                meta["name"], meta["namespace"], dict(obj),
                field_manager=FIELD_MANAGER, force=True, _content_type=APPLY,
            )
        except client.ApiException as exc:
            raise KubeError(exc.status, f"{obj['kind']} {meta['name']}: {_message(exc)}") from exc
        return self._dict(result)

    def apply_status(self, plural: str, kind: str, namespace: str, name: str,
                     status: Mapping[str, Any]) -> dict[str, Any] | None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": kind,
            "metadata": {"name": name, "namespace": namespace},
            "status": dict(status),
        }
        try:
            return self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, plural, name, body,
                field_manager=FIELD_MANAGER, force=True, _content_type=APPLY,
            )
        except client.ApiException as exc:
            if exc.status == 404:  # deleted meanwhile
                return None
            raise KubeError(exc.status, f"{kind} {name} status: {_message(exc)}") from exc

    def get_statefulset(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._dict(self.apps.read_namespaced_stateful_set(name, namespace))
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise KubeError(exc.status, f"StatefulSet {name}: {_message(exc)}") from exc

    def get_config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._dict(self.core.read_namespaced_config_map(name, namespace))
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise KubeError(exc.status, f"ConfigMap {name}: {_message(exc)}") from exc

    def list_pods(self, namespace: str, selector: Mapping[str, str]) -> list[dict[str, Any]]:
        label_selector = ",".join(f"{k}={v}" for k, v in selector.items())
        try:
            pods = self.core.list_namespaced_pod(namespace, label_selector=label_selector)
        except client.ApiException as exc:
            raise KubeError(exc.status, f"list pods: {_message(exc)}") from exc
        return [self._dict(p) for p in pods.items]

    def delete_pod(self, namespace: str, name: str, uid: str) -> None:
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {"uid": uid}}
        try:
            self.core.delete_namespaced_pod(name, namespace, body=body)
        except client.ApiException as exc:
            if exc.status in (404, 409):  # gone already, or a new pod of that name
                return
            raise KubeError(exc.status, f"delete pod {name}: {_message(exc)}") from exc

    def get_custom(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise KubeError(exc.status, f"{plural}/{name}: {_message(exc)}") from exc

    def list_custom(self, plural: str, namespace: str) -> list[dict[str, Any]]:
        try:
            result = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
        except client.ApiException as exc:
            raise KubeError(exc.status, f"list {plural}: {_message(exc)}") from exc
        return list(result.get("items") or [])
