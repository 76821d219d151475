"""The topic registry: which topics exist, their ids, partition counts and overrides.

On a single node it is a JSON document in the first log directory, rewritten
atomically on every change, so a crash leaves either the old or the new registry.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

from .durable_file import read_json, write_json

REGISTRY_FILE = "brook-topics.json"


@dataclass(frozen=True)
class TopicInfo:
    name: str
    topic_id: uuid.UUID
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)
    internal: bool = False
    created_ms: int = 0


class TopicRegistry:
    def __init__(self, directory: Path) -> None:
        self.path = directory / REGISTRY_FILE
        self.topics: dict[str, TopicInfo] = {}
        self._by_id: dict[uuid.UUID, str] = {}
        for item in read_json(self.path, {"topics": []})["topics"]:  # type: ignore[index]
            info = TopicInfo(item["name"], uuid.UUID(item["id"]), int(item["partitions"]),
                             dict(item.get("configs", {})), bool(item.get("internal")),
                             int(item.get("created_ms", 0)))
            self._put(info)

    def _put(self, info: TopicInfo) -> None:
        self.topics[info.name] = info
        self._by_id[info.topic_id] = info.name

    def _save(self) -> None:
        write_json(self.path, {"topics": [
            {"name": t.name, "id": str(t.topic_id), "partitions": t.partitions,
             "configs": t.configs, "internal": t.internal, "created_ms": t.created_ms}
            for t in self.topics.values()
        ]})

    def get(self, name: str) -> TopicInfo | None:
        return self.topics.get(name)

    def name_for_id(self, topic_id: uuid.UUID) -> str | None:
        return self._by_id.get(topic_id)

    def create(self, name: str, partitions: int, configs: dict[str, str],
               internal: bool = False) -> TopicInfo:
        info = TopicInfo(name, uuid.uuid4(), partitions, dict(configs), internal,
                         int(time.time() * 1000))
        self._put(info)
        self._save()
        return info

    def delete(self, name: str) -> TopicInfo:
        info = self.topics.pop(name)
        self._by_id.pop(info.topic_id, None)
        self._save()
        return info

    def set_partitions(self, name: str, partitions: int) -> TopicInfo:
        info = replace(self.topics[name], partitions=partitions)
        self._put(info)
        self._save()
        return info

    def set_configs(self, name: str, configs: dict[str, str]) -> TopicInfo:
        info = replace(self.topics[name], configs=dict(configs))
        self._put(info)
        self._save()
        return info
