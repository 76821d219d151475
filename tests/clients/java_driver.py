"""Driver for the Apache Kafka Java client (JavaClient.java, single-file source launch)."""

from __future__ import annotations

from pathlib import Path

from .helper_process import HelperDriver
from .toolpaths import paths

JAVA_SOURCE = Path(__file__).resolve().parent / "JavaClient.java"


class JavaClientDriver(HelperDriver):
    """org.apache.kafka:kafka-clients (the version fetched by tools/setup-test-tools.sh).

    One JVM per driver instance (started on first use, ~2-4 s to compile and start),
    serving every call until close()."""

    name = "java"

    def _check_tools(self):
        paths.java_path()
        paths.kafka_home()

    def _helper_argv(self):
        argv = [
            paths.java_path(), "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-Xshare:auto", f"-Dlog4j2.configurationFile={paths.log4j_config('tools')}",
            "-cp", paths.kafka_classpath(), str(JAVA_SOURCE),
        ]
        return argv, None

    def produce(self, bootstrap, topic, records, compression="none", per_second: int = 0,
                durable: bool = False):
        """per_second > 0 paces the sends, so a fault can land while the producer is
        still busy however fast the machine is. durable: set acks=all and
        enable.idempotence=true explicitly (the cluster fault tests)."""
        extra = {"per_second": per_second} if per_second else {}
        if durable:
            extra["durable"] = True
        return super().produce(bootstrap, topic, records, compression, **extra)
