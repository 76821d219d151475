"""Dict-in, dict-out Kubernetes REST calls for the test harness and pod runner.

A thin layer over the `kubernetes` client's ApiClient (the project's one
Kubernetes client): it signs and sends requests; this module only spares the
harness the typed models, which it does not need.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes import client, config


class ApiError(Exception):
    def __init__(self, status: int, body: Any, method: str, path: str):
        self.status = status
        self.body = body
        message = body.get("message") if isinstance(body, dict) else str(body)
        super().__init__(f"{method} {path}: {status} {message}")
        self.message = message


class KubeApi:
    def __init__(self, kubeconfig: str):
        self.config = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, client_configuration=self.config)
        self.api = client.ApiClient(self.config)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, Any] | None = None,
        content_type: str = "application/json",
        timeout: float = 30,
    ) -> Any:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        params = [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in (query or {}).items()]
        m, url, hdrs, payload, post = self.api.param_serialize(
            method, path, query_params=params, header_params=headers, body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(m, url, header_params=hdrs, body=payload, post_params=post,
                                     _request_timeout=timeout)
        response.read()
        data = response.data
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = data.decode(errors="replace") if isinstance(data, bytes) else data
        if response.status >= 400:
            raise ApiError(response.status, parsed, method, path)
        return parsed

    # -- conveniences ----------------------------------------------------------------------
    def get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, query=query)

    def get_or_none(self, path: str) -> Any:
        try:
            return self.request("GET", path)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def items(self, path: str, **query: Any) -> list[dict[str, Any]]:
        return list((self.get(path, **query) or {}).get("items") or [])

    def create(self, path: str, body: Mapping[str, Any]) -> Any:
        return self.request("POST", path, dict(body))

    def create_or_ignore(self, path: str, body: Mapping[str, Any]) -> Any:
        try:
            return self.create(path, body)
        except ApiError as exc:
            if exc.status != 409:
                raise
            return None

    def merge_patch(self, path: str, patch: Mapping[str, Any]) -> Any:
        return self.request("PATCH", path, dict(patch), content_type="application/merge-patch+json")

    def apply(self, path: str, body: Mapping[str, Any], manager: str = "brook-test") -> Any:
        return self.request("PATCH", path, dict(body), query={"fieldManager": manager, "force": True},
                            content_type="application/apply-patch+yaml")

    def delete(self, path: str, **query: Any) -> Any:
        try:
            return self.request("DELETE", path, query=query)
        except ApiError as exc:
            if exc.status != 404:
                raise
            return None


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    """Poll until predicate() returns something truthy; return it, or fail saying what."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - reported if the wait times out
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}{detail}")
        time.sleep(interval)


def object_path(obj: Mapping[str, Any]) -> str:
    """REST path of an object from its apiVersion/kind/metadata (kinds the tests use)."""
    api_version, kind = obj["apiVersion"], obj["kind"]
    meta = obj["metadata"]
    plural = PLURALS.get(kind) or kind.lower() + "s"
    prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    namespace = meta.get("namespace")
    if kind in CLUSTER_SCOPED or not namespace:
        return f"{prefix}/{plural}/{meta['name']}"
    return f"{prefix}/namespaces/{namespace}/{plural}/{meta['name']}"


PLURALS = {
    "KafkaCluster": "kafkaclusters",
    "Topic": "topics",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "StorageClass": "storageclasses",
    "NetworkPolicy": "networkpolicies",
    "Ingress": "ingresses",
    "Endpoints": "endpoints",
    "CustomResourceDefinition": "customresourcedefinitions",
}
CLUSTER_SCOPED = {
    "Namespace", "Node", "PersistentVolume", "StorageClass", "ClusterRole",
    "ClusterRoleBinding", "CustomResourceDefinition", "PriorityClass",
}
