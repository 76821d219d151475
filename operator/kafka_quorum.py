"""The metadata quorum's voters, through the brokers' controller listener (side effects).

Kafka's own tools change KRaft voters with AddRaftVoter/RemoveRaftVoter over the Kafka
protocol; Brook's brokers expose the same operations on their controller port (gRPC),
as `brook quorum describe|add-voter|remove-voter` does. Any broker relays to the active controller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from brook.operator.kafka_admin import AdminError


class QuorumClient:
    def __init__(self, controllers: Sequence[str], timeout: float = 15.0):
        self.controllers = list(controllers)  # HOST:PORT of brokers' controller listeners
        self.timeout = timeout

    def _call(self, op: str, request: dict) -> dict:
        from brook.broker.controller.rpc import call_via  # grpc; only when asked

        errors = []
        for address in self.controllers:
            try:
                result = asyncio.run(asyncio.wait_for(call_via(address, op, request, timeout=self.timeout),
                                                      self.timeout + 1))
            except Exception as exc:  # noqa: BLE001 - unreachable, no controller: try the next
                errors.append(f"{address}: {exc}")
                continue
            if result.get("error_code"):
                raise AdminError("QuorumChangeRefused", f"{op}: {result.get('error_message')}")
            return result
        raise AdminError("ClusterUnreachable", f"{op}: {'; '.join(errors)[:500]}", unreachable=True)

    def voters(self) -> list[int]:
        return sorted(int(v) for v in self._call("describe_quorum", {}).get("voters", []))

    def add_voter(self, node_id: int) -> list[int]:
        """Promote a registered broker to voter; returns the voters after. The controller
        first lets it catch up as a learner, so this may take a while."""
        return sorted(int(v) for v in self._call("add_voter", {"broker_id": node_id}).get("voters", []))

    def remove_voter(self, node_id: int) -> None:
        self._call("remove_voter", {"broker_id": node_id})
