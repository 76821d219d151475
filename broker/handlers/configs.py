"""DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics and the broker.

Topic configs are dynamic (stored in the topic registry). Broker configs are static
(server.properties and --override), except the replication throttle rates, which can be
set per broker or as the cluster default at runtime, as in Kafka; a request to change
any other broker config is refused with a message that says where to set it.
"""

from __future__ import annotations

from collections import Counter

from kio.schema.errors import ErrorCode

from ..config import BROKER_PROPERTIES
from ..replication.throttle import (
    DYNAMIC_BROKER_CONFIGS,
    InvalidThrottle,
    validate_dynamic_broker_config,
)
from ..topic_config import (
    BOOLEAN,
    DOUBLE,
    INT,
    LIST,
    LONG,
    SHORT,
    STRING,
    TOPIC_CONFIG_KEYS,
    InvalidConfigError,
    default_value,
    validate_overrides,
    validate_value,
)
from .registry import api

DESCRIBE_CONFIGS, ALTER_CONFIGS, INCREMENTAL_ALTER_CONFIGS = 32, 33, 44
TOPIC, BROKER, BROKER_LOGGER = 2, 4, 8
# ConfigSource codes
DYNAMIC_TOPIC_CONFIG, DYNAMIC_BROKER_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG = 1, 2, 3
STATIC_BROKER_CONFIG, DEFAULT_CONFIG = 4, 5
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3

_BROKER_TYPES = {"int": INT, "long": LONG, "short": SHORT, "double": DOUBLE, "bool": BOOLEAN,
                 "str": STRING, "list": LIST}
# Broker keys Kafka treats as secrets would be marked sensitive; Brook has none yet.
_SENSITIVE: frozenset[str] = frozenset()


class ResourceError(Exception):
    def __init__(self, error: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error = error


def topic_config_entries(broker, overrides: dict[str, str], synonyms: bool,
                         keys=None, documentation: bool = False) -> list[dict]:
    entries = []
    for name, key in TOPIC_CONFIG_KEYS.items():
        if keys is not None and name not in keys:
            continue
        default = default_value(name, broker.config)
        synonym = key.broker_synonym
        broker_set = synonym is not None and synonym in broker.config.explicit
        if name in overrides:
            value, source = overrides[name], DYNAMIC_TOPIC_CONFIG
        else:
            value, source = default, STATIC_BROKER_CONFIG if broker_set else DEFAULT_CONFIG
        chain = []
        if synonyms:
            if name in overrides:
                chain.append({"name": name, "value": overrides[name],
                              "source": DYNAMIC_TOPIC_CONFIG})
            if broker_set:
                chain.append({"name": synonym, "value": default, "source": STATIC_BROKER_CONFIG})
            elif synonym is not None:
                chain.append({"name": synonym, "value": default, "source": DEFAULT_CONFIG})
        entries.append({"name": name, "value": value, "read_only": False,
                        "config_source": source, "is_sensitive": False, "synonyms": chain,
                        "config_type": key.kind,
                        "documentation": key.documentation if documentation else None})
    return entries


def _broker_value(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def broker_config_entries(broker, synonyms: bool, keys=None) -> list[dict]:
    entries = []
    for name, (kind, _default) in BROKER_PROPERTIES.items():
        if keys is not None and name not in keys:
            continue
        explicit = name in broker.config.explicit
        value = _broker_value(broker.config.get(name))
        if name == "broker.id":  # node.id's synonym: Kafka reports the node id under both
            explicit = explicit or "node.id" in broker.config.explicit
            value = str(broker.node_id)
        source = STATIC_BROKER_CONFIG if explicit else DEFAULT_CONFIG
        chain = [{"name": name, "value": value, "source": source}]
        if name in DYNAMIC_BROKER_CONFIGS:
            image = broker.metadata.image
            cluster = image.broker_configs.get("", {}).get(name)
            own = image.broker_configs.get(str(broker.node_id), {}).get(name)
            if cluster is not None:
                value, source = cluster, DYNAMIC_DEFAULT_BROKER_CONFIG
                chain.insert(0, {"name": name, "value": cluster, "source": source})
            if own is not None:
                value, source = own, DYNAMIC_BROKER_CONFIG
                chain.insert(0, {"name": name, "value": own, "source": source})
        entries.append({"name": name, "value": value,
                        "read_only": name not in DYNAMIC_BROKER_CONFIGS, "config_source": source,
                        "is_sensitive": name in _SENSITIVE,
                        "synonyms": chain if synonyms else (),
                        "config_type": _BROKER_TYPES.get(kind, STRING), "documentation": None})
    return entries


def _check_broker_name(broker, name: str) -> None:
    if name not in ("", str(broker.node_id)):
        raise ResourceError(ErrorCode.invalid_request,
                            f"Unexpected broker id, expected {broker.node_id} or empty string, "
                            f"but received {name}")


@api(DESCRIBE_CONFIGS, "DescribeConfigs", 1, 4)
async def handle_describe_configs(broker, ctx, request) -> dict:
    synonyms = bool(getattr(request, "include_synonyms", False))
    docs = bool(getattr(request, "include_documentation", False))
    results = []
    for resource in request.resources:
        keys = None if resource.configuration_keys is None else set(resource.configuration_keys)
        result = {"error_code": ErrorCode.none, "error_message": None,
                  "resource_type": resource.resource_type,
                  "resource_name": resource.resource_name, "configs": ()}
        try:
            if resource.resource_type == TOPIC:
                info = broker.registry.get(resource.resource_name)
                if info is None:
                    raise ResourceError(ErrorCode.unknown_topic_or_partition,
                                        f"Topic {resource.resource_name} does not exist")
                result["configs"] = topic_config_entries(broker, info.configs, synonyms, keys,
                                                         docs)
            elif resource.resource_type == BROKER:
                _check_broker_name(broker, resource.resource_name)
                result["configs"] = broker_config_entries(broker, synonyms, keys)
            else:
                raise ResourceError(ErrorCode.invalid_request,
                                    f"Unsupported resource type {resource.resource_type}")
        except ResourceError as exc:
            result.update(error_code=exc.error, error_message=str(exc))
        results.append(result)
    return {"throttle_time": 0, "results": results}


async def _alter_broker(broker, resource, validate_only: bool, compute_broker) -> None:
    """Dynamic broker configs of this broker (its id) or of the cluster (empty name)."""
    _check_broker_name(broker, resource.resource_name)
    current = broker.metadata.image.broker_configs.get(resource.resource_name, {})
    try:
        wanted = compute_broker(current, resource.configs)
        for name, value in wanted.items():
            validate_dynamic_broker_config(name, value)
    except InvalidThrottle as exc:
        raise ResourceError(ErrorCode.invalid_config, str(exc)) from None
    except InvalidConfigError as exc:
        raise ResourceError(ErrorCode.invalid_config, str(exc)) from None
    answer = await broker.controller_call("set_broker_configs", {
        "resource_name": resource.resource_name, "configs": wanted,
        "validate_only": validate_only})
    if answer["error_code"]:
        raise ResourceError(ErrorCode(answer["error_code"]), answer.get("error_message"))
    if not validate_only:
        await broker.wait_for_metadata(
            lambda image: image.broker_configs.get(resource.resource_name, {}) == wanted)


def _duplicates(resources) -> set[tuple[int, str]]:
    counts = Counter((r.resource_type, r.resource_name) for r in resources)
    return {key for key, n in counts.items() if n > 1}


async def _alter_topic(broker, resource, validate_only: bool, compute) -> None:
    info = broker.registry.get(resource.resource_name)
    if info is None:
        raise ResourceError(ErrorCode.unknown_topic_or_partition,
                            f"Topic {resource.resource_name} does not exist")
    try:
        overrides = compute(info.configs, resource.configs)
    except InvalidConfigError as exc:
        raise ResourceError(ErrorCode.invalid_config, str(exc)) from None
    answer = await broker.controller_call("set_topic_configs", {
        "name": info.name, "configs": overrides, "validate_only": validate_only})
    if answer["error_code"]:
        raise ResourceError(ErrorCode(answer["error_code"]), answer.get("error_message"))
    if not validate_only:
        await broker.wait_for_metadata(
            lambda image: image.topic_configs(info.name) == overrides)


async def _alter(broker, request, compute, compute_broker) -> dict:
    dup = _duplicates(request.resources)
    responses = []
    for resource in request.resources:
        result = {"error_code": ErrorCode.none, "error_message": None,
                  "resource_type": resource.resource_type,
                  "resource_name": resource.resource_name}
        try:
            if (resource.resource_type, resource.resource_name) in dup:
                raise ResourceError(ErrorCode.invalid_request,
                                    f"Duplicate resource {resource.resource_name} in request")
            if resource.resource_type == BROKER:
                await _alter_broker(broker, resource, bool(request.validate_only),
                                    compute_broker)
            elif resource.resource_type == TOPIC:
                await _alter_topic(broker, resource, bool(request.validate_only), compute)
            else:
                raise ResourceError(ErrorCode.invalid_request,
                                    f"Unsupported resource type {resource.resource_type}")
        except ResourceError as exc:
            result.update(error_code=exc.error, error_message=str(exc))
        responses.append(result)
    return {"throttle_time": 0, "responses": responses}


@api(ALTER_CONFIGS, "AlterConfigs", 0, 2)
async def handle_alter_configs(broker, ctx, request) -> dict:
    def replace_all(_current, configs):
        return validate_overrides({c.name: c.value for c in configs})

    def replace_broker(_current, configs):
        return {c.name: c.value for c in configs if c.value is not None}

    return await _alter(broker, request, replace_all, replace_broker)


def apply_incremental(current: dict[str, str], configs) -> dict[str, str]:
    """Pure: the overrides after SET / DELETE / APPEND / SUBTRACT operations."""
    names = Counter(c.name for c in configs)
    repeated = [n for n, count in names.items() if count > 1]
    if repeated:
        raise InvalidConfigError(f"Error due to duplicate config keys: {', '.join(repeated)}")
    result = dict(current)
    for c in configs:
        key = TOPIC_CONFIG_KEYS.get(c.name)
        if key is None:
            raise InvalidConfigError(f"Unknown topic config name: {c.name}")
        op = c.config_operation
        if op == SET:
            result[c.name] = validate_value(c.name, c.value)
        elif op == DELETE:
            result.pop(c.name, None)
        elif op in (APPEND, SUBTRACT):
            if key.kind != LIST:
                verb = "append" if op == APPEND else "subtract"
                raise InvalidConfigError(
                    f"Config value {verb} is not allowed for config key: {c.name}")
            items = [i for i in result.get(c.name, "").split(",") if i]
            given = [i.strip() for i in (c.value or "").split(",") if i.strip()]
            if op == APPEND:
                items += [i for i in given if i not in items]
            else:
                items = [i for i in items if i not in given]
            if items:
                result[c.name] = validate_value(c.name, ",".join(items))
            else:
                result.pop(c.name, None)
        else:
            raise InvalidConfigError(f"Unknown config operation {op} for {c.name}")
    return result


def apply_incremental_broker(current: dict[str, str], configs) -> dict[str, str]:
    """Pure: dynamic broker configs after SET / DELETE (APPEND / SUBTRACT suit no rate)."""
    result = dict(current)
    for c in configs:
        if c.config_operation == SET:
            result[c.name] = validate_dynamic_broker_config(c.name, c.value)
        elif c.config_operation == DELETE:
            validate_dynamic_broker_config(c.name, None)
            result.pop(c.name, None)
        else:
            raise InvalidConfigError(f"Config value append/subtract is not allowed for config "
                                     f"key: {c.name}")
    return result


@api(INCREMENTAL_ALTER_CONFIGS, "IncrementalAlterConfigs", 0, 1)
async def handle_incremental_alter_configs(broker, ctx, request) -> dict:
    return await _alter(broker, request, apply_incremental, apply_incremental_broker)
