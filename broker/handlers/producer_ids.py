"""InitProducerId for idempotent producers (transactions are not implemented yet)."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from .registry import api

INIT_PRODUCER_ID = 22
MAX_EPOCH = 32_767


@api(INIT_PRODUCER_ID, "InitProducerId", 0, 5)
async def handle_init_producer_id(broker, ctx, request) -> dict:
    if request.transactional_id is not None:
        # No transaction coordinator yet: refuse plainly rather than pretend.
        return {"throttle_time": 0, "error_code": ErrorCode.invalid_request,
                "producer_id": -1, "producer_epoch": -1}
    producer_id = getattr(request, "producer_id", -1)
    epoch = getattr(request, "producer_epoch", -1)
    if producer_id >= 0 and 0 <= epoch < MAX_EPOCH - 1:
        # KIP-360: an idempotent producer bumps its epoch to reset sequences after an error.
        return {"throttle_time": 0, "error_code": ErrorCode.none,
                "producer_id": producer_id, "producer_epoch": epoch + 1}
    return {"throttle_time": 0, "error_code": ErrorCode.none,
            "producer_id": await broker.producer_ids.allocate(), "producer_epoch": 0}
