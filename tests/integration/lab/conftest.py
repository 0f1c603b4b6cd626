"""An in-process API server + workload controller for the API contract tests.

The contract tests only need the Kubernetes side of the lab, so they start it
in this process (no Prometheus, no mesh) on a free port with a temporary state
directory; several test runs can coexist.
"""
from __future__ import annotations

import os
import pathlib
import uuid
from dataclasses import dataclass
from typing import Callable, Iterator

import pytest
import requests

kubernetes = pytest.importorskip("kubernetes")

from lab.controller import WorkloadController  # noqa: E402
from lab.kube.server import KubeAPIServer  # noqa: E402
from lab.store import Store  # noqa: E402
from lab.testing import wait_for  # noqa: E402

CONTROLLER_DELAY = 0.2


@dataclass
class KubeLab:
    server: KubeAPIServer
    store: Store
    controller_delay: float

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def kubeconfig(self) -> str:
        return str(self.server.kubeconfig_path)

    @property
    def readonly_kubeconfig(self) -> str:
        return str(self.server.readonly_kubeconfig_path)

    @property
    def ca_cert(self) -> str:
        return str(self.server.ca_cert_path)

    @property
    def token(self) -> str:
        return self.server.token

    @property
    def readonly_token(self) -> str:
        return self.server.readonly_token

    def session(self, token: str | None = "admin") -> requests.Session:
        session = requests.Session()
        # REQUESTS_CA_BUNDLE in the environment would otherwise override the lab CA.
        session.trust_env = False
        session.verify = self.ca_cert
        chosen = {"admin": self.token, "readonly": self.readonly_token}.get(token or "", token)
        if chosen:
            session.headers["Authorization"] = f"Bearer {chosen}"
        return session

    def inject_fault(self, method: str, path_regex: str, status: int | None = None, delay: float = 0.0,
                     ratio: float = 1.0, count: int | None = None) -> str:
        response = self.session().post(f"{self.url}/lab/v1/faults", json={
            "method": method, "path_regex": path_regex, "status": status, "delay": delay, "ratio": ratio,
            "count": count})
        response.raise_for_status()
        return response.json()["id"]

    def clear_faults(self) -> None:
        self.session().delete(f"{self.url}/lab/v1/faults").raise_for_status()

    def remove_fault(self, fault_id: str) -> None:
        self.session().delete(f"{self.url}/lab/v1/faults", json={"id": fault_id}).raise_for_status()

    def faults(self) -> list[dict]:
        return self.session().get(f"{self.url}/lab/v1/faults").json()["faults"]


class ClusterKubeLab:
    """The same contract, held against the real kube-apiserver of the session's lab."""

    controller_delay = 0.0

    def __init__(self, handle) -> None:
        self.handle = handle
        self.url = handle.kube_url
        self.kubeconfig = handle.kubeconfig
        self.readonly_kubeconfig = handle.readonly_kubeconfig
        self.ca_cert = handle.ca_cert
        self.token = handle.token
        self.readonly_token = handle.readonly_token

    session = KubeLab.session

    def inject_fault(self, *args, **kwargs) -> str:
        return self.handle.inject_fault(*args, **kwargs)

    def clear_faults(self) -> None:
        self.handle.clear_faults()

    def remove_fault(self, fault_id: str) -> None:
        self.handle.remove_fault(fault_id)

    def faults(self) -> list[dict]:
        return self.handle.faults()


@pytest.fixture(scope="session")
def kube_lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeLab]:
    if os.environ.get("KUBE_CONTRACT_BACKEND") == "cluster":
        yield ClusterKubeLab(request.getfixturevalue("lab"))
        return
    state_dir = pathlib.Path(tmp_path_factory.mktemp("kube-lab"))
    store = Store()
    server = KubeAPIServer(store, state_dir)
    controller = WorkloadController(store, delay=CONTROLLER_DELAY)
    server.start()
    controller.start()
    try:
        yield KubeLab(server, store, CONTROLLER_DELAY)
    finally:
        controller.stop()
        server.stop()


@pytest.fixture(scope="session")
def api_client(kube_lab: KubeLab) -> "kubernetes.client.ApiClient":
    return kubernetes.config.new_client_from_config(kube_lab.kubeconfig)


@pytest.fixture(scope="session")
def readonly_client(kube_lab: KubeLab) -> "kubernetes.client.ApiClient":
    return kubernetes.config.new_client_from_config(kube_lab.readonly_kubeconfig)


@pytest.fixture()
def core(api_client):
    return kubernetes.client.CoreV1Api(api_client)


@pytest.fixture()
def apps(api_client):
    return kubernetes.client.AppsV1Api(api_client)


@pytest.fixture()
def custom(api_client):
    return kubernetes.client.CustomObjectsApi(api_client)


@pytest.fixture()
def ns(kube_lab: KubeLab, api_client) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    core_api = kubernetes.client.CoreV1Api(api_client)
    core_api.create_namespace({"metadata": {"name": name}})
    yield name
    kube_lab.clear_faults()
    try:
        core_api.delete_namespace(name)
    except kubernetes.client.ApiException:
        pass


def _wait_until(predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.05) -> object:
    return wait_for(predicate, timeout=timeout, interval=interval)


@pytest.fixture()
def wait_until() -> Callable[..., object]:
    """Poll a predicate until it returns something truthy; fail with the last value after the timeout."""
    return _wait_until
