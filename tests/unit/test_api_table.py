"""The advertised API table must only name versions that are really implemented."""

import dataclasses
import pathlib
import tomllib

from brook.broker.handlers.registry import load_all
from brook.broker.protocol.codec import request_class, response_class

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_every_advertised_version_has_request_and_response_schemas():
    for spec in load_all().values():
        for version in range(spec.min_version, spec.max_version + 1):
            assert dataclasses.is_dataclass(request_class(spec.key, version)), (spec.name, version)
            assert dataclasses.is_dataclass(response_class(spec.key, version)), (spec.name, version)


def test_kafka_4_minimums_and_topic_id_rule():
    apis = load_all()
    assert apis[0].min_version == 3 and apis[0].max_version <= 12  # Produce
    # ... yet named from v0, as Kafka 4 does, so librdkafka < 2.8 keeps compression on
    assert apis[0].advertised_min == 0
    assert apis[1].min_version == 4 and apis[1].max_version <= 12  # Fetch


def test_every_package_directory_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    mapping = config["tool"]["setuptools"]["package-dir"]
    for import_name, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            name = ".".join([import_name, *relative.parts])
            assert name in listed, f"{name} ({init.parent}) is missing from pyproject packages"
