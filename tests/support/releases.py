"""Canary releases on the lab for integration tests: a manifest on disk, its objects, playbook runs, hook calls."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import urllib.error
import urllib.request

import yaml

from lab.testing import deployment
from tests.support.modules import REPO_ROOT, _environment, run_playbook

PLAYBOOK = REPO_ROOT / "playbooks" / "canary.yml"
SEED = REPO_ROOT / "examples" / "backend-service-canary.yaml"
FAST = {"canary_interval_override": "2s", "canary_metric_interval_override": "10s", "canary_poll": 1}


def short_manifest(namespace: str, name: str = "app", **analysis) -> dict:
    """A Canary like the seed's, with two steps so a run takes seconds."""
    spec_analysis = {"interval": "1m", "threshold": 2, "stepWeights": [30, 60], "metrics": [
        {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"},
        {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "1m"}]}
    spec_analysis.update(analysis)
    return {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "metadata": {"name": name, "namespace": namespace},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "progressDeadlineSeconds": 60,
                     "service": {"port": 9898, "gateways": ["public-gateway.istio-system.svc.cluster.local"],
                                 "hosts": ["app.example.com"]},
                     "analysis": spec_analysis}}


class Release:
    """One canary in a lab namespace: its manifest on disk, its objects, and playbook runs."""

    def __init__(self, lab, namespace: str, tmp_path: pathlib.Path, manifest: dict | None = None,
                 manifest_path: pathlib.Path | None = None, target: dict | None = None, env: dict | None = None,
                 mesh_provider: str = ""):
        from kubernetes import client  # pylint: disable=import-outside-toplevel

        self.lab = lab
        self.namespace = namespace
        self.tmp_path = tmp_path
        self.api = lab.kube_client()
        self.apps = client.AppsV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)
        if manifest_path is None:
            manifest_path = tmp_path / "canary.yaml"
            manifest_path.write_text(yaml.safe_dump(manifest))
        self.manifest_path = manifest_path
        self.manifest = yaml.safe_load(manifest_path.read_text())
        self.name = self.manifest["metadata"]["name"]
        self.env = dict(env or {})
        # The provider of a manifest without spec.provider (the role's canary_mesh_provider).
        self.mesh_provider = mesh_provider
        self.apps.create_namespaced_deployment(namespace, target or deployment(self.name))

    def extra_vars(self, **overrides) -> dict:
        values = {"canary_kubeconfig": self.lab.kubeconfig, "canary_prometheus_url": self.lab.prometheus_url,
                  "canary_manifest": str(self.manifest_path), "canary_report_dir": str(self.tmp_path / "reports"),
                  "ansible_python_interpreter": sys.executable}
        values.update(FAST)
        if self.mesh_provider:
            values["canary_mesh_provider"] = self.mesh_provider
        values.update(overrides)
        return values

    def run(self, **overrides) -> subprocess.CompletedProcess:
        return run_playbook(PLAYBOOK, self.extra_vars(**overrides), env=self.env, timeout=300)

    def popen(self, **overrides) -> subprocess.Popen:
        env = _environment(self.env)
        env.update({"ANSIBLE_NOCOLOR": "1", "ANSIBLE_PYTHON_INTERPRETER": sys.executable})
        command = [str(pathlib.Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                   str(PLAYBOOK), "-e", json.dumps(self.extra_vars(**overrides))]
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                cwd=str(REPO_ROOT))

    def template(self, name: str | None = None) -> dict:
        return self.apps.read_namespaced_deployment(name or self.name, self.namespace).to_dict()["spec"]["template"]

    def set_template(self, image: str | None = None, annotations: dict | None = None) -> None:
        patch: dict = {"spec": {"template": {}}}
        if image:
            container = self.template()["spec"]["containers"][0]["name"]
            patch["spec"]["template"]["spec"] = {"containers": [{"name": container, "image": image}]}
        if annotations:
            patch["spec"]["template"]["metadata"] = {"annotations": annotations}
        self.apps.patch_namespaced_deployment(self.name, self.namespace, patch)

    @property
    def gateway_api(self) -> bool:
        return str(self.manifest["spec"].get("provider") or self.mesh_provider).startswith("gatewayapi")

    def route(self) -> dict:
        """The generated VirtualService, or HTTPRoute for a Gateway API provider."""
        name = self.manifest["spec"]["service"].get("name", self.name)
        if self.gateway_api:
            return self.custom.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", self.namespace,
                                                            "httproutes", name)
        return self.custom.get_namespaced_custom_object("networking.istio.io", "v1", self.namespace, "virtualservices",
                                                        name)

    def weights(self) -> dict[str, int]:
        """The weights of the VirtualService's first route, or of the HTTPRoute's rule the canary drives."""
        spec = self.route()["spec"]
        if self.gateway_api:
            rule = [r for r in spec["rules"] if not r.get("name", "").endswith(("-canary-match", "-sticky"))][0]
            return {ref["name"]: ref.get("weight", 1) for ref in rule["backendRefs"]}
        return {d["destination"]["host"]: d.get("weight", 0) for d in spec["http"][0]["route"]}

    def replicas(self) -> int:
        return self.apps.read_namespaced_deployment(self.name, self.namespace).spec.replicas or 0

    def state(self) -> dict:
        config_map = self.core.read_namespaced_config_map(self.name + "-canary-state", self.namespace)
        return json.loads(config_map.data["state.json"])

    def report(self) -> dict:
        reports = sorted((self.tmp_path / "reports").glob("*.json"), key=lambda p: p.stat().st_mtime)
        return json.loads(reports[-1].read_text())


def assert_safe(release: Release) -> None:
    """Traffic entirely on the primary, canary at 0 replicas."""
    service = release.manifest["spec"]["service"].get("name", release.name)
    assert release.weights() == {service + "-primary": 100, service + "-canary": 0}
    assert release.replicas() == 0


def post(url: str, payload: dict) -> int:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"},
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def hook_calls(lab, namespace: str, path: str) -> list[dict]:
    with urllib.request.urlopen(lab.hooks_url + "/calls", timeout=5) as answer:
        calls = json.loads(answer.read())
    return [call for call in calls if call["path"] == path and (call.get("body") or {}).get("namespace") == namespace]


def hook_bodies(lab, namespace: str, path: str) -> list[dict]:
    return [call["body"] for call in hook_calls(lab, namespace, path)]


def gate_answers(lab, namespace: str) -> list[int]:
    return [call["status"] for call in hook_calls(lab, namespace, "/gate/check")]
