"""module_defaults on group/progressive.delivery.delivery sets both connections once for every module in it."""

from __future__ import annotations

import json
import re

from tests.support.modules import REPO_ROOT, run_playbook

PLAYBOOK = REPO_ROOT / "tests" / "integration" / "playbooks" / "group_defaults.yml"


def test_group_module_defaults_reach_every_module(lab, namespace, lab_objects):
    lab_objects.virtualservice("web", ["web"], [{"route": [
        {"destination": {"host": "web-primary"}, "weight": 80},
        {"destination": {"host": "web-canary"}, "weight": 20}]}])
    completed = run_playbook(PLAYBOOK, extra_vars={"lab_kubeconfig": lab.kubeconfig,
                                                   "lab_prometheus_url": lab.prometheus_url,
                                                   "test_namespace": namespace})
    assert completed.returncode == 0, completed.stdout + completed.stderr
    answer = json.loads(re.search(r"GROUP-RESULT (\{.*?\})", completed.stdout).group(1).replace("\\\"", "\""))
    assert answer["canary_weight"] == 20
    assert answer["gate_metrics"] == 1
    assert answer["phase"] in ("", None)  # answered, and no release has been recorded for "web" yet
