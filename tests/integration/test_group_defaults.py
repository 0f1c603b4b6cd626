"""module_defaults on each action group sets its connection once for every module in it:
group/progressive.delivery.kubernetes (canary_step, vs_weight) and group/progressive.delivery.prometheus
(prometheus_gate)."""

from __future__ import annotations

import json
import re

import yaml

from tests.support.modules import REPO_ROOT, run_playbook

PLAYBOOK = REPO_ROOT / "tests" / "integration" / "playbooks" / "group_defaults.yml"


def test_runtime_declares_one_group_per_connection():
    groups = yaml.safe_load((REPO_ROOT / "meta" / "runtime.yml").read_text())["action_groups"]
    assert {"canary_step", "vs_weight"} <= set(groups["kubernetes"])
    assert "prometheus_gate" in groups["prometheus"]
    # A module only in one group must not be sent the other connection's options it does not declare.
    assert "prometheus_gate" not in groups["kubernetes"]
    assert not {"canary_step", "vs_weight"} & set(groups["prometheus"])
    assert "delivery" not in groups
    assert all("canary_webhook" not in modules for modules in groups.values())


def test_each_group_reaches_its_modules(lab, namespace, lab_objects):
    lab_objects.virtualservice("web", ["web"], [{"route": [
        {"destination": {"host": "web-primary"}, "weight": 80},
        {"destination": {"host": "web-canary"}, "weight": 20}]}])
    completed = run_playbook(PLAYBOOK, extra_vars={"lab_kubeconfig": lab.kubeconfig,
                                                   "lab_prometheus_url": lab.prometheus_url,
                                                   "test_namespace": namespace},
                             env={"K8S_AUTH_KUBECONFIG": "", "PROMETHEUS_URL": ""})
    assert completed.returncode == 0, completed.stdout + completed.stderr
    answer = json.loads(re.search(r"GROUP-RESULT (\{.*?\})", completed.stdout).group(1).replace("\\\"", "\""))
    assert answer["canary_weight"] == 20
    assert answer["gate_metrics"] == 1
    assert answer["phase"] in ("", None)  # answered, and no release has been recorded for "web" yet
