"""ApiVersions: what the broker implements, derived from the handler registry."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from .registry import APIS, api

API_VERSIONS = 18


def advertised_versions() -> list[dict]:
    return [{"api_key": s.key, "min_version": s.advertised_min, "max_version": s.max_version}
            for s in sorted(APIS.values(), key=lambda s: s.key)]


def api_versions_body(error: ErrorCode = ErrorCode.none) -> dict:
    return {"error_code": error, "api_keys": advertised_versions(), "throttle_time": 0}


@api(API_VERSIONS, "ApiVersions", 0, 3)
async def handle_api_versions(broker, ctx, request) -> dict:
    # v3+ requests carry the client's software name/version; nothing to validate for us.
    return api_versions_body()
