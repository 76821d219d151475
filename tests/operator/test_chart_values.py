"""Static checks of the Helm chart: every value documented, the image's user."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
VALUES = ROOT / "helm" / "brook" / "values.yaml"
KEY = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z][\w./-]*):(?P<rest>.*)$")


def count_keys(node) -> int:
    if isinstance(node, dict):
        return len(node) + sum(count_keys(v) for v in node.values())
    if isinstance(node, list):
        return sum(count_keys(v) for v in node)
    return 0


def undocumented_keys(text: str) -> tuple[list[str], int]:
    """Keys with neither a comment line directly above nor an inline comment, and
    how many keys the lines hold (to compare with the parsed document)."""
    missing, keys, path = [], 0, []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = KEY.match(line)
        if not m:
            continue
        keys += 1
        depth = len(m["indent"]) // 2
        path = path[:depth] + [m["key"]]
        above = lines[i - 1].strip() if i else ""
        inline = "#" in m["rest"] and not m["rest"].strip().startswith(("'", '"'))
        if not above.startswith("#") and not inline:
            missing.append(".".join(path))
    return missing, keys


def test_every_value_has_a_comment():
    text = VALUES.read_text()
    missing, keys = undocumented_keys(text)
    assert missing == [], f"values.yaml keys without a comment directly above or inline: {missing}"
    # Every key is on a line of its own (no flow mappings hiding undocumented keys).
    assert keys == count_keys(yaml.safe_load(text))


def test_the_check_finds_a_missing_comment():
    missing, _ = undocumented_keys("# the a\na:\n  b: 1\n  # c\n  c: 2 \n  d: 3  # d\n\ne: 4\n")
    assert missing == ["a.b", "e"]


def test_image_user_is_the_charts_default_user():
    """The Dockerfile's USER must be the uid the chart runs the pod as (runAsNonRoot
    checks a numeric USER; a different uid would own nothing in the image)."""
    users = re.findall(r"^USER\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert users, "the Dockerfile sets no USER"
    uid, _, gid = users[-1].partition(":")
    pod = yaml.safe_load(VALUES.read_text())["podSecurityContext"]
    assert int(uid) == pod["runAsUser"]
    if gid:
        assert int(gid) == pod["runAsGroup"]
