"""Filter plugins stay light: every task that templates one of the collection's filters loads all of them again in
its own worker process, so a filter that imports the Kubernetes or Prometheus client makes every such task pay for it."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
FILTERS = sorted(path.stem for path in (REPO / "plugins" / "filter").glob("*.py"))
HEAVY = ("kubernetes", "ansible_collections.progressive.delivery.plugins.module_utils.metrics.prometheus",
         "ansible_collections.progressive.delivery.plugins.module_utils.kube.client")


@pytest.mark.parametrize("name", FILTERS)
def test_a_filter_plugin_imports_no_client(name):
    probe = ("import importlib, json, sys; importlib.import_module('ansible_collections.progressive.delivery.plugins.filter.%s');"
             " print(json.dumps([m for m in %r if m in sys.modules]))" % (name, HEAVY))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "build" / "collections"), str(REPO)]))
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    assert json.loads(completed.stdout) == []
