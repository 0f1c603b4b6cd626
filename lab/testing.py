"""A Python handle on a lab, for tests and benchmarks.

    handle = start_lab()            # a private lab in a temp dir, on free ports
    handle.inject_fault("PUT", "/virtualservices/", status=409, count=1)
    handle.stop_prometheus(); handle.start_prometheus()
    handle.stop()

`attach(state_dir)` wraps a lab that is already running (started by
`python -m lab up`); stopping such a handle leaves the lab running.
"""

from __future__ import annotations

import pathlib
import shutil
import tempfile
import time
import urllib.parse
from typing import Any, Callable, Mapping

from lab import control

WAIT_TIMEOUT = 30.0


def wait_for(condition: Callable[[], Any], timeout: float = WAIT_TIMEOUT, interval: float = 0.1,
             message: str = "condition") -> Any:
    """Poll until `condition()` returns something truthy and return it; AssertionError naming `message` on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = condition()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {message}; last value: {last!r}")
        time.sleep(interval)


class LabHandle:
    """Endpoints of one lab and the controls tests need."""

    def __init__(self, info: Mapping[str, Any], process: Any = None, owns_state_dir: bool = False):
        self.info = dict(info)
        self._process = process
        self._owns_state_dir = owns_state_dir
        self.state_dir = pathlib.Path(info["state_dir"])
        self.kubeconfig: str = info["kubeconfig"]
        self.readonly_kubeconfig: str = info["readonly_kubeconfig"]
        self.kube_url: str = info["kube_url"]
        # Modules that should meet injected faults authenticate with this one.
        self.fault_kubeconfig: str = info.get("fault_kubeconfig") or info["kubeconfig"]
        self.token: str = info["token"]
        self.readonly_token: str = info["readonly_token"]
        self.ca_cert: str = info["ca_cert"]
        self.prometheus_url: str = info["prometheus_url"]
        self.pushgateway_url: str = info.get("pushgateway_url") or ""
        self.mesh_url: str = info["mesh_url"]
        self.hooks_url: str = info["hooks_url"]

    @property
    def pids(self) -> dict[str, int | None]:
        current = control.read_state(self.state_dir) or self.info
        return dict(current.get("pids") or {})

    # ------------------------------------------------------------ faults
    def inject_fault(self, method: str, path_regex: str, status: int | None = None, delay: float = 0.0,
                     ratio: float = 1.0, count: int | None = None) -> str:
        return control.add_fault(self.info, method, path_regex, status=status, delay=delay, ratio=ratio, count=count)

    def clear_faults(self) -> None:
        control.clear_faults(self.info)

    def remove_fault(self, fault_id: str) -> None:
        """Lift one fault; tests that share the lab remove their own faults, never all of them."""
        control.remove_fault(self.info, fault_id)

    def faults(self) -> list[dict[str, Any]]:
        return control.list_faults(self.info)

    # ------------------------------------------------------------ backend
    @property
    def backend(self) -> str:
        """"cluster" (the real control plane) or "emulated" (the API emulator)."""
        return self.info.get("backend", "emulated")

    def serve_istio_versions(self, versions: list[str]) -> list[str]:
        """Serve networking.istio.io at these versions only; returns what discovery lists once it applies."""
        return control.istio_versions_action(self.info, versions)

    # -------------------------------------------------------- prometheus
    def stop_prometheus(self) -> None:
        control.prometheus_action(self.info, "stop")

    def start_prometheus(self) -> None:
        """Start Prometheus again (same port, same data) and return once it is ready."""
        control.prometheus_action(self.info, "start")

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query; the `result` list of Prometheus's answer."""
        url = self.prometheus_url + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        status, body = control.http_json("GET", url)
        if status != 200 or not isinstance(body, dict) or body.get("status") != "success":
            raise control.LabError(f"Prometheus refused {promql!r} (HTTP {status}): {body}")
        return body["data"]["result"]

    def query_value(self, promql: str) -> float | None:
        """The single value of an instant query, or None when it returns no series."""
        result = self.query(promql)
        if not result:
            return None
        return float(result[0]["value"][1])

    # -------------------------------------------------------------- mesh
    def send(self, host: str, namespace: str, count: int = 1, headers: Mapping[str, str] | None = None,
             path: str = "/", gateway: str = "mesh") -> dict[str, Any]:
        status, body = control.http_json("POST", self.mesh_url + "/send",
                                         {"host": host, "namespace": namespace, "count": count,
                                          "headers": dict(headers or {}), "path": path, "gateway": gateway},
                                         timeout=60.0)
        if status != 200:
            raise control.LabError(f"mesh /send failed (HTTP {status}): {body}")
        return body

    def traffic(self) -> dict[str, Any]:
        return control.http_json("GET", self.mesh_url + "/traffic")[1]

    # ------------------------------------------------------------ kubernetes
    def kube_client(self, readonly: bool = False) -> Any:
        """A kubernetes.client.ApiClient for this lab (admin, or the read-only identity)."""
        from kubernetes import config  # pylint: disable=import-outside-toplevel
        return config.new_client_from_config(config_file=self.readonly_kubeconfig if readonly else self.kubeconfig)

    def health(self) -> dict[str, str | None]:
        return control.health(self.info)

    # ------------------------------------------------------------ lifecycle
    def stop(self) -> None:
        """Stop a lab this handle started (and remove its temp state dir); labs attached to are left running."""
        if self._process is None:
            return
        leftovers = control.stop_lab(self.state_dir)
        try:
            self._process.wait(timeout=5)
        except Exception:  # pylint: disable=broad-except
            self._process.kill()
        self._process = None
        if leftovers:
            raise control.LabError(f"lab processes left running: {', '.join(leftovers)}")
        if self._owns_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)


def start_lab(state_dir: pathlib.Path | str | None = None, seed: bool = False,
              timeout: float = control.DEFAULT_UP_TIMEOUT, backend: str = "auto") -> LabHandle:
    """Start a private lab (in a new temp dir unless one is given) and wait until every endpoint answers."""
    owns = state_dir is None
    directory = pathlib.Path(tempfile.mkdtemp(prefix="lab-")) if state_dir is None else pathlib.Path(state_dir)
    process = control.spawn_serve(directory, seed=seed, detach=False, backend=backend)
    try:
        info = control.wait_until_up(directory, process, timeout)
    except BaseException:
        control.stop_lab(directory)
        if process.poll() is None:
            process.kill()
        process.wait(timeout=5)
        raise
    return LabHandle(info, process, owns_state_dir=owns)


def attach(state_dir: pathlib.Path | str) -> LabHandle:
    """A handle on a running lab; raises LabError when it is not running or not healthy."""
    info = control.read_state(pathlib.Path(state_dir))
    if info is None or not control.process_alive((info.get("pids") or {}).get("lab"), "lab"):
        raise control.LabError(f"no lab is running in {state_dir}; start one with `python -m lab up`")
    problems = {name: problem for name, problem in control.health(info).items() if problem}
    if problems:
        raise control.LabError(f"the lab in {state_dir} is not healthy: {problems}")
    return LabHandle(info)


# --------------------------------------------------------------- test objects
def deployment(name: str, labels: Mapping[str, str] | None = None, annotations: Mapping[str, str] | None = None,
               replicas: int = 1, image: str = "ghcr.io/stefanprodan/podinfo:6.7.0") -> dict[str, Any]:
    """A minimal Deployment whose pods carry `labels` (default app=<name>) and the given template annotations."""
    labels = dict(labels or {"app": name})
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels), "annotations": dict(annotations or {})},
                "spec": {"containers": [{"name": "app", "image": image, "ports": [{"name": "http", "containerPort": 9898}]}]},
            },
        },
    }


def service(name: str, selector: Mapping[str, str] | None = None, port: int = 9898) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": dict(selector or {"app": name}),
                 "ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}]},
    }


def virtualservice(name: str, hosts: list[str], http: list[dict[str, Any]], gateways: list[str] | None = None,
                   annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"hosts": list(hosts), "http": http}
    if gateways:
        spec["gateways"] = list(gateways)
    return {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": name, "annotations": dict(annotations or {})},
        "spec": spec,
    }


class Objects:
    """Create workloads, services and VirtualServices in a lab namespace with the real kubernetes client."""

    def __init__(self, api_client: Any, namespace: str, mesh_url: str | None = None):
        from kubernetes import client  # pylint: disable=import-outside-toplevel
        self.namespace = namespace
        self.mesh_url = mesh_url
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

    def workload(self, name: str, error_rate: float | None = None, latency_ms: float | None = None,
                 replicas: int = 1, labels: Mapping[str, str] | None = None, with_service: bool = True,
                 extra_annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
        """A Deployment (and a Service of the same name) whose requests fail and take as configured."""
        annotations = dict(extra_annotations or {})
        if error_rate is not None:
            annotations["lab.progressive.delivery/error-rate"] = str(error_rate)
        if latency_ms is not None:
            annotations["lab.progressive.delivery/latency-ms"] = str(latency_ms)
        created = self.apps.create_namespaced_deployment(
            self.namespace, deployment(name, labels, annotations, replicas))
        if with_service:
            self.core.create_namespaced_service(self.namespace, service(name, labels))
        return created.to_dict()

    def set_template_annotations(self, name: str, annotations: Mapping[str, str]) -> None:
        self.apps.patch_namespaced_deployment(
            name, self.namespace, {"spec": {"template": {"metadata": {"annotations": dict(annotations)}}}})

    def wait_ready(self, name: str, timeout: float = WAIT_TIMEOUT) -> None:
        """Every replica of the Deployment ready and, when a Service of that name exists, listed as its endpoint."""
        def ready() -> int:
            deployment = self.apps.read_namespaced_deployment(name, self.namespace)
            wanted = deployment.spec.replicas or 0
            status = deployment.status
            done = status and (status.updated_replicas or 0) == wanted == (status.ready_replicas or 0)
            return wanted if done and (status.observed_generation or 0) >= deployment.metadata.generation else 0
        replicas = wait_for(ready, timeout, message=f"deployment {self.namespace}/{name} to have all replicas ready")
        if self.core.list_namespaced_service(self.namespace, field_selector=f"metadata.name={name}").items:
            self.wait_endpoints(name, replicas, timeout)

    def wait_endpoints(self, service_name: str, count: int, timeout: float = WAIT_TIMEOUT) -> None:
        """The mesh routes requests for the Service to `count` ready pods (it follows the API a moment behind)."""
        if self.mesh_url is None:
            return
        url = f"{self.mesh_url}/endpoints?" + urllib.parse.urlencode({"service": service_name, "namespace": self.namespace})

        def routed() -> bool:
            _status, body = control.http_json("GET", url)
            return sum(endpoint["ready_replicas"] for endpoint in body["endpoints"]) == count
        wait_for(routed, timeout, message=f"the mesh to route Service {self.namespace}/{service_name} to {count} pods")

    def virtualservice(self, name: str, hosts: list[str], http: list[dict[str, Any]], gateways: list[str] | None = None,
                       annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
        return self._routed(self.custom.create_namespaced_custom_object(
            "networking.istio.io", "v1", self.namespace, "virtualservices",
            virtualservice(name, hosts, http, gateways, annotations)))

    def patch_virtualservice(self, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        return self._routed(self.custom.patch_namespaced_custom_object(
            "networking.istio.io", "v1", self.namespace, "virtualservices", name, dict(patch)))

    def _routed(self, written: dict[str, Any]) -> dict[str, Any]:
        """Return once the mesh routes by this version of the VirtualService (it follows the API a moment behind)."""
        if self.mesh_url is None:
            return written
        key = f"{self.namespace}/{written['metadata']['name']}"
        wanted = int(written["metadata"]["resourceVersion"])

        def seen() -> bool:
            version = control.http_json("GET", f"{self.mesh_url}/traffic")[1]["virtualservices"].get(key)
            return version is not None and int(version) >= wanted
        wait_for(seen, message=f"the mesh to route by VirtualService {key} at resourceVersion {wanted}")
        return written
