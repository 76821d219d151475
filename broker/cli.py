"""`brook broker` and `brook operator` entry points."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from .config import BrokerConfig, ConfigError

log = logging.getLogger("brook")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="brook", description="Kafka-compatible broker and "
                                     "its Kubernetes operator")
    sub = parser.add_subparsers(dest="command", required=True)
    broker = sub.add_parser("broker", help="run a broker (defaults: PLAINTEXT://127.0.0.1:9092, "
                            "data in ./brook-data)")
    broker.add_argument("--config", type=Path, help="a Kafka server.properties file")
    broker.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="set a broker property (repeatable), e.g. node.id=1")
    broker.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    sub.add_parser("operator", help="run the Kubernetes operator (Kopf)", add_help=False)
    quorum = sub.add_parser("quorum", help="show or change the metadata quorum's voters")
    quorum.add_argument("action", choices=("describe", "add-voter", "remove-voter"))
    quorum.add_argument("--controller", required=True, metavar="HOST:PORT",
                        help="any broker's controller listener, e.g. 127.0.0.1:9093")
    quorum.add_argument("--node-id", type=int, help="the broker to add or remove")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Peers' names (controller listeners) are looked up with getaddrinfo, like the rest
    # of the process (Kafka listeners, fetchers), not with gRPC's own c-ares resolver: in
    # a pod whose /etc/hosts names the brokers, c-ares answered one broker's name with
    # another's address, while getaddrinfo agreed with the file.
    os.environ.setdefault("GRPC_DNS_RESOLVER", "native")
    if argv and argv[0] == "operator":
        from brook.operator.cli import main as operator_main  # heavy imports, only when asked

        return operator_main(argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "quorum":
        return _quorum_command(args)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        text = args.config.read_text() if args.config else None
        config = BrokerConfig.from_sources(text, args.override)
    except FileNotFoundError:
        print(f"brook broker: config file {args.config} not found", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"brook broker: {exc}", file=sys.stderr)
        return 2
    for key in config.unknown:
        log.warning("ignoring unknown broker property %s", key)
    _install_fast_loop()
    # kio's phantom types import hypothesis, when installed (a test dependency), only to
    # register test strategies: 150 ms of a broker's start-up spent on nothing it uses.
    sys.modules.setdefault("hypothesis", None)
    from .runner import StartupFailure, run_broker

    try:
        asyncio.run(run_broker(config))
    except StartupFailure as exc:
        print(f"brook broker: {exc}", file=sys.stderr)
        return 1
    return 0


def _quorum_command(args) -> int:
    import json

    from .controller.rpc import ControllerUnavailable, call_via

    if args.action != "describe" and args.node_id is None:
        print(f"brook quorum {args.action}: --node-id is required", file=sys.stderr)
        return 2
    op = {"describe": "describe_quorum", "add-voter": "add_voter",
          "remove-voter": "remove_voter"}[args.action]
    try:
        result = asyncio.run(call_via(args.controller, op, {"broker_id": args.node_id}))
    except ControllerUnavailable as exc:
        print(f"brook quorum: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # grpc errors: unreachable address and the like
        print(f"brook quorum: cannot reach {args.controller}: {exc}", file=sys.stderr)
        return 1
    if result.get("error_code"):
        print(f"brook quorum: {result.get('error_message')}", file=sys.stderr)
        return 1
    if args.action != "describe":
        result = asyncio.run(call_via(args.controller, "describe_quorum", {}))
    print(json.dumps(result))
    return 0


def _install_fast_loop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
