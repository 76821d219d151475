"""A read-only view of topics, built from the cluster metadata image.

Handlers, the group coordinator and the log cleaner ask "does this topic exist, how
many partitions, which overrides" here; changes go through the controller.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TopicInfo:
    name: str
    topic_id: uuid.UUID
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)
    internal: bool = False


class TopicsView:
    def __init__(self, image_of) -> None:
        self._image_of = image_of  # callable: the current MetadataImage

    def _info(self, topic) -> TopicInfo:
        image = self._image_of()
        return TopicInfo(topic.name, uuid.UUID(topic.topic_id), len(topic.partitions),
                         image.topic_configs(topic.name), topic.internal)

    def get(self, name: str | None) -> TopicInfo | None:
        topic = self._image_of().topics.get(name) if name else None
        return self._info(topic) if topic is not None else None

    def name_for_id(self, topic_id: uuid.UUID) -> str | None:
        return self._image_of().topic_names.get(str(topic_id))

    @property
    def topics(self) -> dict[str, TopicInfo]:
        return {name: self._info(t) for name, t in self._image_of().topics.items()}
