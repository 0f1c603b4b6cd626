"""Secrets a release carries never reach any output at -vvvv: stdout, the reports, the state, the Events."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import uuid

import pytest
import yaml

from tests.support.modules import REPO_ROOT, _environment
from tests.support.releases import PLAYBOOK, Release, hook_bodies, short_manifest

pytestmark = pytest.mark.slow


def _everything_in(release: Release) -> dict[str, str]:
    """Every artifact of the release a person or a tool can read afterwards, as text."""
    artifacts = {path.name: path.read_text(errors="replace") for path in (release.tmp_path / "reports").iterdir()}
    config_maps = release.core.list_namespaced_config_map(release.namespace).items
    artifacts["config maps"] = json.dumps([item.to_dict() for item in config_maps], default=str)
    events = release.core.list_namespaced_event(release.namespace).items
    artifacts["events"] = json.dumps([item.to_dict() for item in events], default=str)
    return artifacts


def test_secrets_stay_out_of_every_output_at_vvvv(lab, namespace, tmp_path):
    hook_token = "hook-" + uuid.uuid4().hex
    prometheus_token = "prom-" + uuid.uuid4().hex
    prometheus_password = "pass-" + uuid.uuid4().hex
    hooks = [
        # Flagger's load tester takes headers as "Name: value" lines; the lab's smoke endpoint does too.
        {"name": "smoke", "type": "rollout", "url": lab.hooks_url + "/smoke",
         "metadata": {"host": "app-canary", "namespace": namespace, "count": "2",
                      "headers": "Authorization: Bearer " + hook_token}},
        {"name": "notify", "type": "event", "url": lab.hooks_url + "/gate/approve",
         "metadata": {"token": hook_token}},
        {"name": "done", "type": "post-rollout", "url": lab.hooks_url + "/gate/approve",
         "metadata": {"apiKey": hook_token}},
    ]
    template_password = "tmpl-" + uuid.uuid4().hex
    manifest = short_manifest(namespace, webhooks=hooks)
    manifest["spec"]["analysis"]["metrics"].append(
        {"name": "constant", "templateRef": {"name": "constant"}, "thresholdRange": {"max": 10}, "interval": "1m"})
    release = Release(lab, namespace, tmp_path, manifest=manifest)
    # The lab's Prometheus has no authentication: it ignores the bearer token and the URL's user info.
    scheme, rest = lab.prometheus_url.split("://", 1)
    secret_vars = {"canary_prometheus_token": prometheus_token,
                   "canary_prometheus_url": "%s://canary:%s@%s" % (scheme, prometheus_password, rest),
                   # A kubeconfig given as data, with the lab's admin token in it.
                   "canary_kubeconfig": yaml.safe_load(open(lab.kubeconfig, encoding="utf-8")),
                   # A MetricTemplate whose provider address carries credentials, as Flagger allows.
                   "canary_metric_templates": [{
                       "apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
                       "metadata": {"name": "constant", "namespace": namespace},
                       "spec": {"provider": {"type": "prometheus",
                                             "address": "%s://tmpl:%s@%s" % (scheme, template_password, rest)},
                                "query": "vector(1)"}}]}
    secrets = {"webhook metadata": hook_token, "prometheus token": prometheus_token,
               "prometheus password": prometheus_password, "kubeconfig token": lab.token,
               "MetricTemplate address password": template_password}

    # In a file, as AWX passes them: ansible-playbook itself echoes its command line at -vvvv.
    secrets_file = tmp_path / "secrets.yml"
    secrets_file.write_text(yaml.safe_dump(secret_vars))
    extra_vars = {key: value for key, value in release.extra_vars().items() if key not in secret_vars}
    command = [str(pathlib.Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
               str(PLAYBOOK), "-e", json.dumps(extra_vars), "-e", "@" + str(secrets_file)]
    env = _environment({"ANSIBLE_VERBOSITY": "4", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_PYTHON_INTERPRETER": sys.executable})

    def run() -> subprocess.CompletedProcess:
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False,
                              cwd=str(REPO_ROOT))

    first = run()
    assert first.returncode == 0, first.stdout[-3000:]
    release.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.1")
    second = run()
    assert second.returncode == 0, second.stdout[-4000:]
    assert release.report()["result"] == "Succeeded"

    # The secrets were really used: the hooks got them, so finding none below means they were hidden.
    assert any(body["metadata"].get("headers") == "Authorization: Bearer " + hook_token
               for body in hook_bodies(lab, namespace, "/smoke"))
    approvals = hook_bodies(lab, namespace, "/gate/approve")
    assert any(body["metadata"].get("token") == hook_token for body in approvals)
    assert any(body["metadata"].get("apiKey") == hook_token for body in approvals)
    # -vvvv really was in force, and the run showed what it called.
    assert "verbosity: 4" in second.stdout
    assert "smoke" in second.stdout and "done" in second.stdout
    # The MetricTemplate behind the credentialed address was queried.
    assert "constant" in json.dumps(release.report()["samples"])

    outputs = {"first run": first.stdout + first.stderr, "second run": second.stdout + second.stderr}
    outputs.update(_everything_in(release))
    leaks = [_leak(what, secret, where, text) for what, secret in secrets.items()
             for where, text in outputs.items() if secret in text]
    assert not leaks, "\n\n".join(leaks)


def _leak(what: str, secret: str, where: str, text: str) -> str:
    """Where a secret was found: the tasks that printed it, and the first line (the secret itself replaced)."""
    lines = text.splitlines()
    found = [number for number, line in enumerate(lines) if secret in line]
    tasks = []
    for number in found:
        task = next((line for line in reversed(lines[:number + 1]) if line.startswith("TASK [")), "(before any task)")
        if task not in tasks:
            tasks.append(task)
    first = lines[found[0]].replace(secret, "<SECRET>")[:300]
    return "%s: %d line(s) of %s, under %s; first: %s" % (what, len(found), where, "; ".join(tasks), first)
