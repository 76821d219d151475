"""A real Broker (a metadata quorum of one, no Kafka listener) for synchronous tests.

The broker's event loop runs on a background thread; the few operations that need it
(topic creation and deletion, start and stop) are run there and awaited, while the
test keeps calling partitions and the group coordinator directly, as before.
"""

from __future__ import annotations

import asyncio
import threading

from brook.broker.broker import Broker
from brook.broker.config import BrokerConfig


class LocalBroker:
    def __init__(self, values: dict[str, str]) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        from tests.support.broker_process import free_port

        values = {"listeners": f"PLAINTEXT://127.0.0.1:{free_port()},"
                               f"CONTROLLER://127.0.0.1:{free_port()}",
                  "controller.listener.names": "CONTROLLER", **values}
        self.broker = Broker(BrokerConfig.from_dict(values))
        self._run(self.broker.start())
        if self.broker.registry.get("__consumer_offsets") is None:
            self._run(self.broker.group_coordinator.create_offsets_topic())
        self.broker.group_coordinator.load()

    def _run(self, coro, timeout: float = 30.0):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def __getattr__(self, name):
        return getattr(self.broker, name)

    def create_topic(self, name: str, partitions: int, configs: dict[str, str]):
        return self._run(self.broker.create_topic(name, partitions, configs))

    def delete_topic(self, name: str) -> None:
        async def delete():
            await self.broker.controller_call("delete_topics", {"names": [name]})
            await self.broker.wait_for_metadata(lambda image: name not in image.topics)

        self._run(delete())

    def close(self) -> None:
        self._run(self.broker.stop_background())
        self.broker.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
