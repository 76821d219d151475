"""ControllerChannel over real gRPC on loopback, against stand-in controllers."""

import asyncio

import grpc
import pytest

from brook.broker.controller.rpc import ControllerChannel, ControllerUnavailable, controller_service
from brook.broker.controller.service import NotController


class StandIn:
    """Answers like a controller that is not the leader (or is, with `result`)."""

    def __init__(self, node_id, names=None, result=None):
        self.node_id = node_id
        self.names = names
        self.result = result
        self.calls = 0

    async def call(self, op, request):
        self.calls += 1
        if self.result is not None:
            return self.result
        raise NotController(self.names)


async def serve(controller):
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((controller_service(controller),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


def channel_to(addresses, leader=None):
    local = StandIn(99)
    return ControllerChannel(local, lambda: False, lambda: leader, addresses.get,
                             voters=lambda: sorted(addresses), attempt_timeout=1.0)


def test_an_address_answering_as_another_node_is_not_believed():
    async def main():
        # node 1's address now leads to node 0, which names node 1 as the leader
        impostor = StandIn(0, names=1)
        server, address = await serve(impostor)
        channel = channel_to({1: address}, leader=1)
        try:
            with pytest.raises(ControllerUnavailable, match="answered as node 0"):
                await channel.call("heartbeat", {}, timeout=1.5)
        finally:
            await channel.close()
            await server.stop(0)
        return impostor.calls
    assert asyncio.run(main()) >= 2  # asked again after forgetting the channel


def test_a_node_naming_itself_sends_the_caller_back_to_its_own_view():
    async def main():
        confused = StandIn(1, names=1)  # not the leader, yet names itself
        leader = StandIn(2, result={"error_code": 0, "ok": True})
        servers = [await serve(confused), await serve(leader)]
        views = iter([1, 2, 2, 2, 2, 2])
        local = StandIn(99)
        addresses = {1: servers[0][1], 2: servers[1][1]}
        channel = ControllerChannel(local, lambda: False, lambda: next(views), addresses.get,
                                    attempt_timeout=1.0)
        try:
            return await channel.call("heartbeat", {}, timeout=5)
        finally:
            await channel.close()
            for server, _ in servers:
                await server.stop(0)
    assert asyncio.run(main()) == {"error_code": 0, "ok": True}


def test_not_controller_never_names_the_node_itself():
    from brook.broker.config import BrokerConfig
    from brook.broker.controller.service import Controller
    from brook.broker.metadata.image import MetadataImage

    config = BrokerConfig.from_sources(None, [])
    controller = Controller(3, MetadataImage, None, lambda: False, lambda: 3, config)
    with pytest.raises(NotController) as caught:
        asyncio.run(controller.call("heartbeat", {}))
    assert caught.value.leader_id is None
