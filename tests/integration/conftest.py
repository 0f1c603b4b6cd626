"""Fixtures for tests against the lab.

One lab per test session, started in a temp state dir on free ports (so
several runs can coexist), or the lab named by $LAB_STATE_DIR when one is
running there. Tests isolate themselves by namespace.
"""

from __future__ import annotations

import os
import re
import uuid
from typing import Iterator

import pytest

from lab import control
from lab.testing import LabHandle, Objects, attach, start_lab


def _backend_line() -> str:
    from lab.runtime import default_backend  # pylint: disable=import-outside-toplevel

    if default_backend() == "cluster":
        from lab.cluster.binaries import build_dir  # pylint: disable=import-outside-toplevel
        return (f"lab: real control plane (kube-apiserver, etcd, kube-controller-manager, kube-scheduler and kwok "
                f"from {build_dir()})")
    return "lab: Kubernetes API emulator (build the real control plane with `make controlplane`)"


def pytest_report_header(config) -> str:
    return _backend_line()


def pytest_terminal_summary(terminalreporter) -> None:
    # Also under -q, which hides the header: the output must say what the tests ran against.
    terminalreporter.write_line(_backend_line())


def _running_lab_from_env() -> LabHandle | None:
    state_dir = os.environ.get("LAB_STATE_DIR")
    if not state_dir:
        return None
    try:
        return attach(state_dir)
    except control.LabError:
        return None


@pytest.fixture(scope="session")
def lab() -> Iterator[LabHandle]:
    handle = _running_lab_from_env()
    if handle is not None:
        yield handle
        return
    handle = start_lab()
    try:
        wanted = os.environ.get("LAB_BACKEND", "auto")
        assert wanted in ("auto", handle.backend), f"LAB_BACKEND={wanted}, but the lab runs on {handle.backend}"
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="session")
def k8s_auth(lab: LabHandle) -> dict[str, str]:
    """Module options that authenticate against the lab as its admin."""
    return {"kubeconfig": lab.kubeconfig}


@pytest.fixture(scope="session")
def faulty_k8s_auth(lab: LabHandle) -> dict[str, str]:
    """Module options that reach the API through the lab's fault front: requests meet `lab.inject_fault` faults."""
    return {"kubeconfig": lab.fault_kubeconfig}


@pytest.fixture(scope="session")
def lab_api_client(lab: LabHandle):
    client = lab.kube_client()
    yield client
    client.close()


def _namespace_name(test_name: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", test_name.lower()).strip("-")[:40].strip("-") or "test"
    return f"{slug}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def namespace(request: pytest.FixtureRequest, lab_api_client) -> Iterator[str]:
    """A fresh namespace in the lab, deleted (with everything in it) after the test."""
    from kubernetes import client  # pylint: disable=import-outside-toplevel
    from kubernetes.client.exceptions import ApiException  # pylint: disable=import-outside-toplevel

    core = client.CoreV1Api(lab_api_client)
    name = _namespace_name(request.node.name)
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name)
        except ApiException as error:
            if error.status != 404:
                raise


@pytest.fixture
def lab_objects(lab, lab_api_client, namespace: str) -> Objects:
    """Helpers creating workloads, services and VirtualServices in the test's namespace."""
    return Objects(lab_api_client, namespace, mesh_url=lab.mesh_url)


@pytest.fixture
def kube(lab):
    """The lab's API groups a test reads objects through (admin credentials)."""
    from kubernetes import client  # pylint: disable=import-outside-toplevel

    api = lab.kube_client()

    class Kube:
        core = client.CoreV1Api(api)
        apps = client.AppsV1Api(api)
        custom = client.CustomObjectsApi(api)
        coordination = client.CoordinationV1Api(api)

    yield Kube
    api.close()
