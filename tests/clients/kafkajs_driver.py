"""Driver for kafkajs (kafkajs_client.js run by node with the cached node_modules)."""

from __future__ import annotations

import os
from pathlib import Path

from .helper_process import HelperDriver
from .toolpaths import paths

JS_SOURCE = Path(__file__).resolve().parent / "kafkajs_client.js"


class KafkajsDriver(HelperDriver):
    """kafkajs (pinned in tools/tool-versions.env). One node process per driver instance.

    Limits that come from kafkajs itself:
    * headers are a JS object per message: a name repeated and interleaved with other
      names does not keep its relative order (values of one name stay in order);
    * only the legacy AlterConfigs API: the driver emulates incremental alters with
      describe + AlterConfigs of the topic's current dynamic configs;
    * no manual assignment in its consumer: see kafkajs_client.js for how consume() works.
    """

    name = "kafkajs"
    supports_duplicate_headers = False
    incremental_alter_configs = False

    def _check_tools(self):
        paths.node_path()
        paths.node_modules_dir()

    def _helper_argv(self):
        env = dict(os.environ)
        env["NODE_PATH"] = str(paths.node_modules_dir())
        return [paths.node_path(), str(JS_SOURCE)], env
