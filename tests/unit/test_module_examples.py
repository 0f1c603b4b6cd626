"""Every module's EXAMPLES block, run as written by the real ansible-playbook.

Each block becomes the task list of one play. Only what cannot be reached from a test is substituted, and the
test says which: the example hosts (prometheus.istio-system, flagger-loadtester.test, events.example.com) become
local servers that answer as Prometheus and Flagger's load tester do; durations of a minute or more become one
second so the run stays short. Everything else, and in particular every string Ansible templates, is left as the
user would copy it, so an example that fails as copied (an undefined variable, an option the module does not take)
fails here.
"""
from __future__ import annotations

import ast
import json
import re
import textwrap
from pathlib import Path

import pytest
import yaml
from werkzeug.wrappers import Response

from tests.support.modules import REPO_ROOT, run_playbook

MODULES = sorted(path.stem for path in (Path(REPO_ROOT) / "plugins" / "modules").glob("*.py")
                 if not path.name.startswith("_"))
KUBERNETES_MODULES = ("canary_analysis", "canary_step", "httproute_weight", "vs_weight")

# Variables the examples take from earlier tasks of a user's play.
PLAY_VARS = {
    "canary_run_id": "examples-run",
    "canary_started_at": "now",
    "release_checksum": "0123abcd",
    "events_token": "example-token",
    "step_index": 2,
    "run_id": "examples-run",
    "revision": "0123abcd",
    # the role's plan of Flagger's Istio guide Canary, made as the role makes it
    "release_plan": "{{ lookup('file', '%s/examples/backend-service-canary.yaml') | progressive.delivery.canary_plan }}"
                    % REPO_ROOT,
    "canary": {"spec": {"analysis": {"metrics": [
        {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}]}}},
    "release": {"state": {"virtualService": {"name": "backend-service", "route": "",
                                             "apiVersion": "networking.istio.io/v1"}}},
}


def examples_text(module: str) -> str:
    source = (Path(REPO_ROOT) / "plugins" / "modules" / f"{module}.py").read_text()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "EXAMPLES":
            return node.value.value
    raise AssertionError(f"{module} has no EXAMPLES")


def example_tasks(module: str) -> list[dict]:
    from ansible.parsing.yaml.loader import AnsibleLoader
    return AnsibleLoader(examples_text(module)).get_single_data()


def play(module: str, substitutions: dict[str, str], module_defaults: dict) -> str:
    text = examples_text(module)
    for old, new in substitutions.items():
        text = re.sub(old, new, text)
    header = yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False, "ignore_errors": True,
        "vars": PLAY_VARS, "module_defaults": module_defaults}], sort_keys=False)
    return header + "  tasks:\n" + textwrap.indent(text, "    ")


# Records each task's result as one JSON line (ansible-core has no JSON callback of its own).
RECORDER = """
import json, os
from ansible.plugins.callback import CallbackBase

class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "examples_recorder"
    CALLBACK_NEEDS_ENABLED = True

    def _record(self, result, status):
        with open(os.environ["EXAMPLES_RESULTS"], "a") as out:
            out.write(json.dumps({"name": result.task_name, "status": status,
                                  "result": result._result}, default=str) + "\\n")

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")
"""


def run_examples(tmp_path, module, substitutions, module_defaults=None, check=False):
    playbook = tmp_path / f"{module}_examples.yml"
    playbook.write_text(play(module, substitutions, module_defaults or {}))
    (tmp_path / "callbacks").mkdir()
    (tmp_path / "callbacks" / "examples_recorder.py").write_text(RECORDER)
    results_file = tmp_path / "results.jsonl"
    completed = run_playbook(playbook, check=check, env={
        "ANSIBLE_CALLBACK_PLUGINS": str(tmp_path / "callbacks"), "ANSIBLE_CALLBACKS_ENABLED": "examples_recorder",
        "EXAMPLES_RESULTS": str(results_file)})
    assert completed.returncode == 0, completed.stdout + completed.stderr
    records = [json.loads(line) for line in results_file.read_text().splitlines()]
    names = [task.get("name") for task in example_tasks(module)]
    assert [record["name"] for record in records] == names, "every example task must run"
    return [(record["name"], record["status"], record["result"]) for record in records]


@pytest.mark.parametrize("module", MODULES)
def test_examples_are_tasks_of_their_module(module):
    tasks = example_tasks(module)
    assert tasks, f"{module} has an empty EXAMPLES block"
    for task in tasks:
        assert task.get("name"), f"an example of {module} has no name"
        assert f"progressive.delivery.{module}" in task, f"{task['name']!r} does not call {module}"


UNAUTHORIZED = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Unauthorized", "reason": "Unauthorized", "code": 401}


@pytest.mark.parametrize("module", [m for m in KUBERNETES_MODULES if m in MODULES])
def test_kubernetes_examples_template_and_validate_and_reach_the_api_server(tmp_path, httpserver, module):
    # No cluster in unit tests (the lab is for tests/integration). In check mode every example must get as far as
    # asking the API server, so its variables template and its options pass the module's argument spec. The API
    # server here is a local one that refuses the token as a real one would (HTTP 401, Kubernetes' Status), named
    # through module_defaults as a user's play would name a cluster. canary_analysis answers check mode with a skip
    # once its arguments are templated (a release against a refusing server would retry for minutes); those of its
    # examples that need the cluster even to decide that are still asked.
    httpserver.expect_request(re.compile("/.*")).respond_with_json(UNAUTHORIZED, status=401)
    results = run_examples(tmp_path, module, {}, check=True, module_defaults={
        "group/progressive.delivery.kubernetes": {"host": httpserver.url_for("").rstrip("/"), "api_key": "example"}})
    assert httpserver.log, "no example reached the API server"
    tasks = {task["name"]: task for task in example_tasks(module)}
    registered = {task["register"] for task in tasks.values() if "register" in task}
    for name, status, result in results:
        message = result.get("msg", "")
        if status == "skipped":
            assert "check mode" in message or "when" in tasks[name], (name, result)
            continue
        if "Error while evaluating conditional" in message:
            # A condition on an earlier example's result, which has no answer without a cluster.
            assert any(variable in str(tasks[name].get("when")) for variable in registered), (name, message)
            continue
        assert status == "failed" and ("401" in message or "Unauthorized" in message), (name, result)


def prometheus_answer(request):
    """Prometheus' HTTP API: every instant query has one series of value 100, every range query one such step."""
    now = 1_700_000_000
    if request.path.endswith("/query_range"):
        data = {"resultType": "matrix", "result": [{"metric": {}, "values": [[now, "100"]]}]}
    else:
        data = {"resultType": "vector", "result": [{"metric": {}, "value": [now, "100"]}]}
    return Response(json.dumps({"status": "success", "data": data}), content_type="application/json")


def test_prometheus_gate_examples_run_against_prometheus(tmp_path, httpserver):
    httpserver.expect_request(re.compile("/api/v1/.*")).respond_with_handler(prometheus_answer)
    local = httpserver.url_for("").rstrip("/")
    results = run_examples(tmp_path, "prometheus_gate", {
        # the examples' Prometheus servers are this local one
        r"http://prometheus\.(istio-system|monitoring):9090": local,
        # a watch or a sequential judgement over a minute takes a second here
        r"duration: 1m": "duration: 1", r"poll: 5": "poll: 1",
    }, module_defaults={"group/progressive.delivery.prometheus": {"prometheus_url": local}})
    for name, status, result in results:
        assert "metrics" in result and not result.get("config_error"), (name, result)
        assert all(metric.get("result") != "error" for metric in result["metrics"]), (name, result)
    assert httpserver.log


def test_canary_webhook_examples_run_against_a_load_tester(tmp_path, httpserver):
    # Flagger's load tester answers 200 to commands and to an open gate; the event receiver 202.
    httpserver.expect_request(re.compile("/(gate|rollback)/check"), method="POST").respond_with_data("ok", status=200)
    httpserver.expect_request("/flagger", method="POST").respond_with_data("", status=202)
    httpserver.expect_request("/", method="POST").respond_with_data("ok", status=200)
    local = httpserver.url_for("").rstrip("/")
    results = run_examples(tmp_path, "canary_webhook", {
        # the examples' load tester and event receiver are this local server
        r"http://flagger-loadtester\.test": local,
        # it speaks plain HTTP, so the receiver's address has no TLS and its CA file is not needed
        r"https://events\.example\.com": local, r"\n *ca_cert: .*": "",
    })
    for name, status, result in results:
        assert status == "ok" and result["passed"] is True, (name, result)
    sent = [json.loads(request.get_data()) for request, _ in httpserver.log]
    assert {body["name"] for body in sent} == {"podinfo"} and len(sent) == len(results)
    assert all("Bearer" not in json.dumps(result) for _, _, result in results)
