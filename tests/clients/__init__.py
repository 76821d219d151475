"""One driver per Kafka client behind one interface (see base.ClientDriver).

    from tests.clients import ALL_DRIVERS, DRIVER_CLASSES, get_driver

``ALL_DRIVERS`` holds the driver names, for ``pytest.mark.parametrize``; a driver
instance is made by ``get_driver(name)`` (or ``DRIVER_CLASSES[name]()``). Helper-process
drivers (java, kafkajs) start their process on first use and keep it until ``close()``,
so create them once per session (see tests/component/test_client_drivers.py).
"""

from __future__ import annotations

from .base import (
    COMPRESSIONS,
    INTERNAL_TOPICS,
    ClientDriver,
    KafkaClientError,
    ToolUnavailable,
    TopicDescription,
    Unsupported,
)
from .java_driver import JavaClientDriver
from .kafkajs_driver import KafkajsDriver
from .kcat_driver import KcatDriver
from .python_drivers import AiokafkaDriver, ConfluentKafkaDriver, KafkaPythonDriver

DRIVER_CLASSES: dict[str, type[ClientDriver]] = {
    cls.name: cls
    for cls in (ConfluentKafkaDriver, KafkaPythonDriver, AiokafkaDriver, KcatDriver,
                KafkajsDriver, JavaClientDriver)
}
ALL_DRIVERS: tuple[str, ...] = tuple(DRIVER_CLASSES)


def get_driver(name: str) -> ClientDriver:
    return DRIVER_CLASSES[name]()


__all__ = [
    "ALL_DRIVERS", "COMPRESSIONS", "DRIVER_CLASSES", "INTERNAL_TOPICS", "ClientDriver",
    "KafkaClientError", "ToolUnavailable", "TopicDescription", "Unsupported", "get_driver",
    "AiokafkaDriver", "ConfluentKafkaDriver", "JavaClientDriver", "KafkaPythonDriver",
    "KafkajsDriver", "KcatDriver",
]
