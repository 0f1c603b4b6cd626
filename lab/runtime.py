"""One lab process: API server, workload controller, mesh, hooks server, a supervised Prometheus and Pushgateway."""

from __future__ import annotations

import json
import logging
import os
import pathlib
import signal
import threading
import time
from typing import Any

from lab.faults import FaultInjector
from lab.hooks import HooksServer
from lab.mesh import Mesh
from lab.prom import PrometheusError, PrometheusServer, PushgatewayServer
from lab.store import Store

LOG = logging.getLogger("lab")

STATE_FILE = "lab.json"
PID_FILE = "lab.pid"
PROMETHEUS_STOP_PATH = "/lab/prometheus/stop"
PROMETHEUS_START_PATH = "/lab/prometheus/start"
PROMETHEUS_STATUS_PATH = "/lab/prometheus"
ISTIO_VERSIONS_PATH = "/lab/istio-versions"
FAULT_KUBECONFIG = "kubeconfig-faults"
BACKENDS = ("cluster", "emulated")
MIRROR_SYNC_TIMEOUT = 30.0


def default_backend() -> str:
    """$LAB_BACKEND, else the real control plane when it is built, else the API emulator."""
    chosen = os.environ.get("LAB_BACKEND", "auto")
    if chosen in BACKENDS:
        return chosen
    if chosen != "auto":
        raise ValueError(f"LAB_BACKEND must be one of {', '.join(BACKENDS)} or auto, not {chosen!r}")
    from lab.cluster.binaries import missing  # pylint: disable=import-outside-toplevel
    return "emulated" if missing() else "cluster"


def write_json_atomically(path: pathlib.Path, data: dict[str, Any]) -> None:
    """Readers never see a half-written file; the mode is 0600 because it holds the tokens."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(temporary, path)


class Lab:
    """Starts the parts in dependency order and stops them in reverse."""

    def __init__(self, state_dir: pathlib.Path, host: str = "127.0.0.1", seed_demo: bool = False,
                 kube_port: int = 0, mesh_port: int = 0, hooks_port: int = 0, prometheus_port: int = 0,
                 prometheus: bool = True, controller_delay: float = 1.0, backend: str = "emulated"):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        self.backend = backend
        self.state_dir = pathlib.Path(state_dir).resolve()
        self.host = host
        self.seed_demo = seed_demo
        self.ports = {"kube": kube_port, "mesh": mesh_port, "hooks": hooks_port, "prometheus": prometheus_port}
        self.with_prometheus = prometheus
        self.controller_delay = controller_delay
        self.store = Store()
        self.faults = FaultInjector()
        self.kube: Any = None
        self.fault_front: Any = None
        self.controller: Any = None
        self.mesh: Mesh | None = None
        self.hooks: HooksServer | None = None
        self.prometheus: PrometheusServer | None = None
        self.pushgateway: PushgatewayServer | None = None
        self._state_lock = threading.Lock()
        self._started = False

    @property
    def state_file(self) -> pathlib.Path:
        return self.state_dir / STATE_FILE

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            routed = self._start_cluster() if self.backend == "cluster" else self._start_emulator()
            self.mesh = Mesh(routed, host=self.host, port=self.ports["mesh"], endpointslices=self.backend == "cluster")
            self.mesh.start()
            self.hooks = HooksServer(host=self.host, port=self.ports["hooks"], send=self.mesh.send)
            self.hooks.start()
            mesh_target = self.mesh.url.split("://", 1)[1]
            # Release metrics are pushed here (a playbook run is a batch job); Prometheus scrapes it like the mesh.
            self.pushgateway = PushgatewayServer(self.state_dir, host=self.host, on_change=self.write_state)
            self.pushgateway.start()
            self.prometheus = PrometheusServer(self.state_dir, [mesh_target], host=self.host,
                                               port=self.ports["prometheus"], on_change=self.write_state,
                                               pushgateway=self.pushgateway.url.split("://", 1)[1])
            self._add_control_routes()
            if self.with_prometheus:
                self.prometheus.start()
        except BaseException:
            self.stop()
            raise
        self._started = True
        self.write_state()

    def _start_emulator(self) -> Store:
        # Imported here so the mesh, hooks and CLI stay usable on their own.
        from lab.controller import WorkloadController  # pylint: disable=import-outside-toplevel
        from lab.kube.server import KubeAPIServer  # pylint: disable=import-outside-toplevel

        self.kube = KubeAPIServer(self.store, self.state_dir, host=self.host, port=self.ports["kube"], faults=self.faults)
        self.kube.start()
        self.controller = WorkloadController(self.store, delay=self.controller_delay)
        self.controller.start()
        if self.seed_demo:
            from lab.seed import seed_demo  # pylint: disable=import-outside-toplevel
            seed_demo(self.store)
        return self.store

    def _start_cluster(self) -> Any:
        from lab.cluster import bootstrap  # pylint: disable=import-outside-toplevel
        from lab.cluster.controlplane import ControlPlane  # pylint: disable=import-outside-toplevel
        from lab.cluster.fault_front import FaultFront  # pylint: disable=import-outside-toplevel
        from lab.cluster.mirror import ClusterMirror  # pylint: disable=import-outside-toplevel
        from lab.kube import kubeconfig  # pylint: disable=import-outside-toplevel

        self.kube = ControlPlane(self.state_dir, host=self.host, port=self.ports["kube"])
        self.kube.start()
        credentials = self.kube.credentials
        self.fault_front = FaultFront(self.kube.url, credentials.ca_cert, credentials.serving_cert,
                                      credentials.serving_key, self.kube.token, host=self.host)
        self.fault_front.start()
        kubeconfig.write(self.state_dir / FAULT_KUBECONFIG, self.fault_front.url, credentials.ca_cert,
                         self.kube.token, "lab-admin")
        if self.seed_demo:
            api = self.kube.api()
            try:
                bootstrap.seed_demo(api)
            finally:
                api.close()
        # The mirror stands where the emulator's workload controller does: it is stopped with the other parts.
        self.controller = ClusterMirror(self.kube.api)
        self.controller.start()
        deadline = time.monotonic() + MIRROR_SYNC_TIMEOUT
        while not self.controller.synced():
            if time.monotonic() >= deadline:
                raise RuntimeError(f"the mesh could not list the cluster's objects within {MIRROR_SYNC_TIMEOUT:.0f}s")
            time.sleep(0.05)
        return self.controller

    def serve_istio_versions(self, versions: Any) -> list[str]:
        if self.backend == "emulated":
            return list(self.kube.set_istio_versions(versions))
        from lab.cluster import istio_versions  # pylint: disable=import-outside-toplevel
        api = self.kube.api()
        try:
            return istio_versions.serve(api, versions)
        finally:
            api.close()

    def _add_control_routes(self) -> None:
        assert self.mesh is not None and self.prometheus is not None
        prometheus = self.prometheus

        def stop(_body: dict) -> tuple[int, dict]:
            prometheus.stop()
            return 200, {"running": prometheus.running(), "url": prometheus.url}

        def start(_body: dict) -> tuple[int, dict]:
            prometheus.start()
            return 200, {"running": prometheus.running(), "ready": prometheus.ready(), "url": prometheus.url,
                         "pid": prometheus.pid}

        def status(_body: dict) -> tuple[int, dict]:
            return 200, {"running": prometheus.running(), "ready": prometheus.ready(), "url": prometheus.url,
                         "pid": prometheus.pid}

        def istio(body: dict) -> tuple[int, dict]:
            try:
                return 200, {"versions": self.serve_istio_versions(body.get("versions"))}
            except ValueError as error:
                return 400, {"error": f"invalid Istio versions: {error}"}

        self.mesh.add_route("PUT", ISTIO_VERSIONS_PATH, istio)
        self.mesh.add_route("POST", PROMETHEUS_STOP_PATH, stop)
        self.mesh.add_route("POST", PROMETHEUS_START_PATH, start)
        self.mesh.add_route("GET", PROMETHEUS_STATUS_PATH, status)

    def info(self) -> dict[str, Any]:
        assert self.kube is not None and self.mesh is not None and self.hooks is not None and self.prometheus is not None
        return {
            "state_dir": str(self.state_dir),
            "kubeconfig": str(self.kube.kubeconfig_path),
            "readonly_kubeconfig": str(self.kube.readonly_kubeconfig_path),
            "kube_url": self.kube.url,
            # Requests through these meet the faults injected at <fault_url>/lab/v1/faults.
            "fault_url": self.fault_front.url if self.fault_front else self.kube.url,
            "fault_kubeconfig": str(self.state_dir / FAULT_KUBECONFIG if self.fault_front else self.kube.kubeconfig_path),
            "token": self.kube.token,
            "readonly_token": self.kube.readonly_token,
            "ca_cert": str(self.kube.ca_cert_path),
            "prometheus_url": self.prometheus.url,
            "pushgateway_url": self.pushgateway.url if self.pushgateway else "",
            "mesh_url": self.mesh.url,
            "hooks_url": self.hooks.url,
            "control_url": self.mesh.url,
            "pids": {"lab": os.getpid(), "prometheus": self.prometheus.pid,
                     "pushgateway": self.pushgateway.pid if self.pushgateway else None, **getattr(self.kube, "pids", {})},
            "backend": self.backend,
            "kube_version": getattr(self.kube, "version", "") or "emulated",
        }

    @staticmethod
    def _stop_part(name: str, part: Any) -> None:
        try:
            if isinstance(part, PrometheusServer):
                part.close()
            else:
                part.stop()
        except Exception:  # pylint: disable=broad-except
            # Keep stopping the others: a half-stopped lab would leave processes behind.
            LOG.exception("stopping the %s failed", name)

    def write_state(self) -> None:
        if not self._started:
            return
        with self._state_lock:
            write_json_atomically(self.state_file, self.info())

    def stop(self) -> None:
        parts = [("prometheus", self.prometheus), ("pushgateway", self.pushgateway), ("hooks", self.hooks), ("mesh", self.mesh),
                 ("controller", self.controller), ("fault front", self.fault_front), ("kube", self.kube)]
        # The parts share nothing but the store, and each waits out its own poll
        # interval when stopping: stopping them side by side keeps `down` quick.
        threads = [threading.Thread(target=self._stop_part, args=(name, part), name=f"stop-{name}")
                   for name, part in parts if part is not None]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self._started:
            try:
                self.state_file.unlink()
            except FileNotFoundError:
                pass
        self._started = False


def serve(state_dir: pathlib.Path, seed_demo: bool = False, host: str = "127.0.0.1", prometheus: bool = True,
          ports: dict[str, int] | None = None, backend: str = "emulated") -> int:
    """Run a lab in the foreground until SIGTERM or SIGINT; returns the exit code."""
    stop_requested = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        LOG.info("received signal %d, stopping", signum)
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    ports = ports or {}
    lab = Lab(state_dir, host=host, seed_demo=seed_demo, prometheus=prometheus,
              kube_port=ports.get("kube", 0), mesh_port=ports.get("mesh", 0), hooks_port=ports.get("hooks", 0),
              prometheus_port=ports.get("prometheus", 0), backend=backend)
    lab.state_dir.mkdir(parents=True, exist_ok=True)
    # Written before anything starts, so `down` can find a lab that is still starting.
    pid_file = lab.state_dir / PID_FILE
    pid_file.write_text(f"{os.getpid()}\n", encoding="utf-8")
    try:
        started = time.monotonic()
        try:
            lab.start()
        except (PrometheusError, RuntimeError) as error:
            LOG.error("%s", error)
            return 2
        LOG.info("lab up in %.2fs: %s", time.monotonic() - started,
                 json.dumps({k: v for k, v in lab.info().items() if k.endswith("_url")}))
        try:
            while not stop_requested.wait(1.0):
                pass
        finally:
            lab.stop()
        LOG.info("lab stopped")
        return 0
    finally:
        try:
            if pid_file.read_text(encoding="utf-8").strip() == str(os.getpid()):
                pid_file.unlink()
        except OSError:
            pass
