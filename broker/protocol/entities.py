"""Fit version-agnostic dicts onto kio's per-version message classes.

Pure. Handlers describe a response once, as plain dicts with Kafka's field names,
and `build()` turns that into the dataclass of the negotiated version: fields the
version lacks are dropped, fields the handler did not give take the schema default
or the type's zero value, and plain ints become the timedelta / datetime / enum
values kio expects.
"""

from __future__ import annotations

import dataclasses
import datetime
import types
import typing
import uuid
from functools import cache

from kio.schema.errors import ErrorCode

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def _unwrap_optional(tp):
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


@dataclasses.dataclass(frozen=True)
class _FieldPlan:
    name: str
    kafka_type: str | None
    nested: type | None  # entity class of a nested struct or array of structs
    is_array: bool
    optional: bool
    default: object
    has_default: bool


@cache
def _plan(cls: type) -> tuple[_FieldPlan, ...]:
    hints = typing.get_type_hints(cls)
    plans = []
    for field in dataclasses.fields(cls):
        tp, optional = _unwrap_optional(hints[field.name])
        is_array = typing.get_origin(tp) is tuple
        inner = typing.get_args(tp)[0] if is_array else tp
        inner, _ = _unwrap_optional(inner)
        nested = inner if dataclasses.is_dataclass(inner) else None
        has_default = field.default is not dataclasses.MISSING
        default = field.default if has_default else None
        if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            has_default, default = True, field.default_factory()  # type: ignore[misc]
        plans.append(_FieldPlan(field.name, field.metadata.get("kafka_type"), nested,
                                is_array, optional, default, has_default))
    return tuple(plans)


def _zero(plan: _FieldPlan) -> object:
    if plan.has_default:
        return plan.default
    if plan.optional:
        return None
    if plan.is_array:
        return ()
    if plan.nested is not None:
        return build(plan.nested, {})
    kind = plan.kafka_type or ""
    if kind == "error_code":
        return ErrorCode.none
    if kind in ("string",):
        return ""
    if kind in ("bytes", "records"):
        return b""
    if kind == "bool":
        return False
    if kind == "uuid":
        return uuid.UUID(int=0)
    if kind.startswith("timedelta"):
        return datetime.timedelta(0)
    if kind.startswith("datetime"):
        return _EPOCH
    if kind == "float64":
        return 0.0
    return 0


def _convert(plan: _FieldPlan, value: object) -> object:
    if value is None:
        return None
    kind = plan.kafka_type or ""
    if plan.nested is not None:
        if plan.is_array:
            return tuple(v if dataclasses.is_dataclass(v) else build(plan.nested, v)
                         for v in value)  # type: ignore[union-attr]
        return value if dataclasses.is_dataclass(value) else build(plan.nested, value)
    if plan.is_array:
        return tuple(value)  # type: ignore[arg-type]
    if kind == "error_code" and not isinstance(value, ErrorCode):
        return ErrorCode(int(value))  # type: ignore[arg-type]
    if kind.startswith("timedelta") and isinstance(value, int):
        return datetime.timedelta(milliseconds=value)
    if kind.startswith("datetime") and isinstance(value, int):
        return _EPOCH + datetime.timedelta(milliseconds=value)
    return value


def build(cls: type, data: dict) -> object:
    """Instantiate kio class `cls` from a dict; unknown keys are ignored."""
    kwargs = {}
    for plan in _plan(cls):
        if plan.name in data:
            kwargs[plan.name] = _convert(plan, data[plan.name])
        else:
            kwargs[plan.name] = _zero(plan)
    return cls(**kwargs)


def has_field(cls: type, name: str) -> bool:
    return any(plan.name == name for plan in _plan(cls))


def ms(value: object) -> int:
    """A request field as milliseconds, whether kio gave a timedelta, datetime or int."""
    if isinstance(value, datetime.timedelta):
        return int(value / datetime.timedelta(milliseconds=1))
    if isinstance(value, datetime.datetime):
        return int((value - _EPOCH) / datetime.timedelta(milliseconds=1))
    return int(value)  # type: ignore[arg-type]
