"""Where the cached test tools live (see tools/setup-test-tools.sh).

Import as ``from tools import paths`` (with the repository root on sys.path) or run as a
script: ``python tools/paths.py classpath|kafka-home|kafkajs|kcat|node-path|env|check``, or
``python tools/paths.py tool <name> [args]`` to run a Kafka tool (names: KAFKA_TOOLS), e.g.
``python tools/paths.py tool consumer-groups --bootstrap-server 127.0.0.1:19092 --list``.

Every lookup raises :class:`ToolMissing` with the command that fixes it when the tool is
not there, so a test that needs a tool can turn that into a clear skip or failure.
"""

from __future__ import annotations

import os
import shutil
import sys
from functools import cache
from pathlib import Path

TOOLS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TOOLS_DIR.parent
SETUP_HINT = "run `make tools` (or `bash tools/setup-test-tools.sh`)"


class ToolMissing(RuntimeError):
    """A cached test tool is not installed; the message says how to install it."""


@cache
def versions() -> dict[str, str]:
    """The pinned versions from tools/tool-versions.env (KEY=VALUE lines)."""
    out: dict[str, str] = {}
    for line in (TOOLS_DIR / "tool-versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip().strip('"')
    return out


def cache_dir() -> Path:
    """$BROOK_CACHE, default ~/.cache/brook (same rule as the Makefile)."""
    return Path(os.environ.get("BROOK_CACHE") or Path.home() / ".cache" / "brook")


def kafka_version() -> str:
    return os.environ.get("BROOK_KAFKA_VERSION") or versions()["KAFKA_VERSION"]


def kafka_home() -> Path:
    """$BROOK_CACHE/kafka-<version>; jars in libs/."""
    home = cache_dir() / f"kafka-{kafka_version()}"
    if not (home / ".complete").is_file():
        raise ToolMissing(f"Apache Kafka {kafka_version()} is not in {home}: {SETUP_HINT}")
    return home


def kafka_libs() -> list[Path]:
    return sorted((kafka_home() / "libs").glob("*.jar"))


def kafka_classpath() -> str:
    """Class path (os.pathsep-joined jars) of the Kafka broker, clients, tools and log4j2."""
    return os.pathsep.join(str(p) for p in kafka_libs())


def log4j_config(kind: str = "tools") -> Path:
    """log4j2 config: "tools" (WARN to stderr) or "broker" (INFO to stdout)."""
    path = TOOLS_DIR / f"log4j2-{kind}.properties"
    if not path.is_file():
        raise ValueError(f"no log4j2 config named {kind!r}")
    return path


def java_path() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if not java:
        raise ToolMissing("java is not on PATH: install a JDK 17+ (Debian: openjdk-17-jdk-headless)")
    return java


# Main classes behind the bin/kafka-*.sh scripts of a Kafka 4.x distribution.
KAFKA_TOOLS = {
    "console-producer": "org.apache.kafka.tools.ConsoleProducer",
    "console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "topics": "org.apache.kafka.tools.TopicCommand",
    "producer-perf-test": "org.apache.kafka.tools.ProducerPerformance",
    "consumer-perf-test": "org.apache.kafka.tools.ConsumerPerformance",
    "get-offsets": "org.apache.kafka.tools.GetOffsetShell",
    "e2e-latency": "org.apache.kafka.tools.EndToEndLatency",
    "dump-log": "org.apache.kafka.tools.DumpLogSegments",
    "metadata-quorum": "org.apache.kafka.tools.MetadataQuorumCommand",
    "storage": "kafka.tools.StorageTool",
}


def java_tool_command(main_class: str, *args: str, heap: str = "256m") -> list[str]:
    """argv to run a Kafka main class quietly (log4j2 WARN to stderr), without the shell
    scripts of a Kafka distribution. main_class may be a KAFKA_TOOLS name ("topics")."""
    return [
        java_path(), f"-Xmx{heap}", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
        f"-Dlog4j2.configurationFile={log4j_config('tools')}",
        "-cp", kafka_classpath(), KAFKA_TOOLS.get(main_class, main_class), *args,
    ]


def kcat_path() -> str:
    kcat = shutil.which("kcat")
    if not kcat:
        raise ToolMissing(f"kcat is not on PATH: {SETUP_HINT} (it runs apt-get install -y kcat)")
    return kcat


def node_path() -> str:
    node = shutil.which("node")
    if not node:
        raise ToolMissing("node is not on PATH: install Node.js 18+")
    return node


def node_modules_dir() -> Path:
    """$BROOK_CACHE/node/node_modules: use as NODE_PATH for the kafkajs driver."""
    root = cache_dir() / "node"
    if not (root / ".complete").is_file() or not (root / "node_modules" / "kafkajs").is_dir():
        raise ToolMissing(f"kafkajs is not in {root}: {SETUP_HINT}")
    return root / "node_modules"


def kafkajs_dir() -> Path:
    return node_modules_dir() / "kafkajs"


def check() -> list[str]:
    """Problems with the installed tools (empty when everything is there)."""
    problems = []
    for fn in (kafka_home, java_path, kcat_path, node_path, node_modules_dir):
        try:
            fn()
        except ToolMissing as e:
            problems.append(str(e))
    return problems


def _main(argv: list[str]) -> int:
    cmd = argv[1] if len(argv) > 1 else "env"
    try:
        if cmd == "classpath":
            print(kafka_classpath())
        elif cmd == "kafka-home":
            print(kafka_home())
        elif cmd == "kafka-version":
            print(kafka_version())
        elif cmd == "kafkajs":
            print(kafkajs_dir())
        elif cmd == "node-path":
            print(node_modules_dir())
        elif cmd == "kcat":
            print(kcat_path())
        elif cmd == "env":
            print(f"export BROOK_KAFKA_HOME={kafka_home()}")
            print(f"export BROOK_KAFKA_CLASSPATH={kafka_classpath()}")
            print(f"export BROOK_KCAT={kcat_path()}")
            print(f"export BROOK_NODE_PATH={node_modules_dir()}")
        elif cmd == "tool":  # python tools/paths.py tool topics --bootstrap-server ... --list
            if len(argv) < 3:
                print("tools: " + ", ".join(sorted(KAFKA_TOOLS)), file=sys.stderr)
                return 2
            os.execv(java_path(), java_tool_command(argv[2], *argv[3:]))
        elif cmd == "check":
            problems = check()
            for p in problems:
                print(p, file=sys.stderr)
            return 1 if problems else 0
        else:
            print(f"usage: {argv[0]} classpath|kafka-home|kafka-version|kafkajs|node-path|kcat|env|check"
                  " | tool <name> [args]",
                  file=sys.stderr)
            return 2
    except ToolMissing as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
