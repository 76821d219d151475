"""`brook operator`: run the Kopf operator (the CLI of brook.operator)."""

from __future__ import annotations

import argparse
import logging
import os

HELP = """Run the Brook operator: reconcile KafkaCluster and Topic resources.

Configuration comes from flags or the environment (the Helm chart sets the latter):
  BROOK_WATCH_NAMESPACES              comma-separated namespaces; empty: all
  BROOK_BROKER_IMAGE                  broker image for clusters that name none
  BROOK_CLUSTER_DOMAIN                Kubernetes DNS domain (cluster.local)
  BROOK_RESYNC_SECONDS                periodic re-check of every resource (30)
  BROOK_TOPIC_DELETE_TIMEOUT_SECONDS  give up deleting a topic of an unreachable
                                      cluster after this long (300)
  BROOK_ADMIN_TIMEOUT_SECONDS         timeout of one Kafka Admin API call (15)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="brook operator", description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", "--namespace", action="append", default=[],
                        help="watch this namespace (repeatable); default: all namespaces")
    parser.add_argument("--liveness", default="http://0.0.0.0:8080/healthz",
                        help="liveness endpoint URL served by Kopf ('' disables)")
    parser.add_argument("--metrics", default="",
                        help="serve Prometheus metrics of the operator on HOST:PORT ('' disables)")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    parser.add_argument("--quiet", action="store_true", help="warnings and errors only")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.namespace:
        os.environ["BROOK_WATCH_NAMESPACES"] = ",".join(args.namespace)

    import kopf

    from brook.operator import handlers

    kopf.configure(verbose=args.verbose, quiet=args.quiet)
    if args.metrics:
        from brook.operator.metrics import serve

        serve(args.metrics)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    namespaces = list(handlers.CONFIG.namespaces)
    kopf.run(
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=args.liveness or None,
    )
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
