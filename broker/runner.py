"""Start a broker, serve until SIGTERM/SIGINT, then stop cleanly (flush, close logs)."""

from __future__ import annotations

import asyncio
import logging

from .broker import Broker, StartupError, stop_step
from .config import BrokerConfig
from .server import KafkaServer

log = logging.getLogger("brook.broker")


class StartupFailure(RuntimeError):
    """Printed as the reason the broker did not start."""


async def run_broker(config: BrokerConfig, ready: asyncio.Event | None = None,
                     stop: asyncio.Event | None = None) -> None:
    from .cli import install_signal_handlers

    stop = stop or asyncio.Event()
    try:
        broker = Broker(config)
    except (StartupError, OSError) as exc:
        raise StartupFailure(str(exc)) from exc
    server = KafkaServer(broker)
    metrics_server = None
    try:
        try:
            # Serve clients only once this broker has joined the cluster: its metadata is
            # then current, so the first Metadata response is already true.
            await broker.start()
        except StartupError as exc:
            raise StartupFailure(str(exc)) from exc
        try:
            await server.start()
        except OSError as exc:
            listener = config.client_listener
            raise StartupFailure(
                f"cannot listen on {listener.host}:{listener.port} ({exc.strerror}); is another "
                "broker running? Choose a port with --override listeners=PLAINTEXT://HOST:PORT"
            ) from exc
        endpoint = config.metrics_listener
        if endpoint is not None:
            try:
                metrics_server, _thread = broker.metrics.serve(*endpoint)
            except OSError as exc:
                raise StartupFailure(
                    f"cannot serve metrics on {endpoint[0]}:{endpoint[1]} ({exc.strerror}); "
                    "set --override brook.metrics.listener=HOST:PORT (empty disables)") from exc
        broker.start_background()
        try:
            install_signal_handlers(stop)
        except (RuntimeError, ValueError):
            pass  # not the main thread (in-process test brokers): the caller sets `stop`
        listener = config.advertised_client_listener
        log.info("Brook broker node %d ready on %s://%s:%d, data in %s, metrics %s",
                 broker.node_id, listener.name, listener.host, listener.port,
                 ",".join(map(str, broker.log_dirs)),
                 f"on http://{endpoint[0]}:{endpoint[1]}/metrics" if endpoint else "off")
        if ready is not None:
            ready.set()
        await stop.wait()
        log.info("stopping: closing connections and flushing logs")
    finally:
        await stop_step("client connections", server.close(), 5)
        await broker.stop_background()
        broker.close()
        if metrics_server is not None:
            metrics_server.shutdown()
        log.info("stopped cleanly")
