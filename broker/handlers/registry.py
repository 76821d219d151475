"""Which Kafka APIs Brook implements, at which versions, and by which handler.

An API is advertised in ApiVersions only if it is registered here, and only at
versions for which kio has a schema (tests/unit/test_api_table.py checks this).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestContext:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    peer: str


# A dict body to encode, None for no response (acks=0), or a list of already encoded
# parts (bytes and file slices: Fetch).
Handler = Callable[..., Awaitable[dict | list | None]]


@dataclass(frozen=True, slots=True)
class ApiSpec:
    key: int
    name: str
    min_version: int
    max_version: int
    handler: Handler
    # The lowest version ApiVersions names. Kafka 4 names Produce v0 though it serves
    # v3+ only (KAFKA-18659): librdkafka before 2.8 turns compression off unless the
    # Produce range overlaps v2. Requests below min_version are still refused.
    advertised_min_version: int | None = None
    # The handler counts its error codes itself (Produce, Fetch: hot paths that know
    # where their errors are); others get their response walked by the dispatcher.
    counts_own_errors: bool = False

    @property
    def advertised_min(self) -> int:
        return self.min_version if self.advertised_min_version is None \
            else self.advertised_min_version


APIS: dict[int, ApiSpec] = {}


def api(key: int, name: str, min_version: int, max_version: int,
        advertised_min_version: int | None = None, counts_own_errors: bool = False):
    """Register a handler: `async def handler(broker, ctx, request) -> dict | None`."""

    def register(handler: Handler) -> Handler:
        if key in APIS:
            raise RuntimeError(f"API {key} ({name}) registered twice")
        APIS[key] = ApiSpec(key, name, min_version, max_version, handler,
                            advertised_min_version, counts_own_errors)
        return handler

    return register


def supports(key: int, version: int) -> bool:
    spec = APIS.get(key)
    return spec is not None and spec.min_version <= version <= spec.max_version


def load_all() -> dict[int, ApiSpec]:
    """Import every handler module so their registrations run."""
    from . import (  # noqa: F401
        api_versions,
        cluster,
        configs,
        fetch,
        group_offsets,
        groups,
        list_offsets,
        metadata,
        produce,
        producer_ids,
        records_admin,
        replication_admin,
        topics_admin,
    )

    return APIS
