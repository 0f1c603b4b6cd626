"""The real control plane as one lab part: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok.

It offers the attributes the lab's state file is made of (url, tokens, CA,
kubeconfigs), like the API emulator does, so the rest of the lab does not
care which one runs.
"""
from __future__ import annotations

import logging
import pathlib
import shutil
import subprocess
import time

import yaml

from lab.cluster import bootstrap, pki
from lab.cluster.api import Api
from lab.cluster.binaries import require
from lab.cluster.processes import Child, wait_until
from lab.prom import free_port

LOG = logging.getLogger("lab.cluster")
POD_STAGES = pathlib.Path(__file__).with_name("pod-stages.yaml")
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
ISSUER = "https://kubernetes.default.svc.cluster.local"
START_TIMEOUT = 90.0
STOP_GRACE_SECONDS = 1.0
# What the lab needs of kube-controller-manager; the rest of a real one's controllers would only cost CPU.
CONTROLLERS = ("deployment-controller", "replicaset-controller", "endpointslice-controller",
               "serviceaccount-controller", "serviceaccount-token-controller", "namespace-controller",
               "garbage-collector-controller", "root-ca-certificate-publisher-controller",
               "horizontal-pod-autoscaler-controller", "clusterrole-aggregation-controller",
               "node-lifecycle-controller", "pod-garbage-collector-controller")


def kwok_config(built_stages: pathlib.Path, destination: pathlib.Path) -> pathlib.Path:
    """kwok's own node stages, and the lab's pod stages instead of kwok's."""
    documents = [doc for doc in yaml.safe_load_all(built_stages.read_text(encoding="utf-8"))
                 if isinstance(doc, dict) and (doc.get("spec") or {}).get("resourceRef", {}).get("kind") == "Node"]
    documents += [doc for doc in yaml.safe_load_all(POD_STAGES.read_text(encoding="utf-8")) if doc]
    destination.write_text(yaml.safe_dump_all(documents, sort_keys=False), encoding="utf-8")
    return destination


class ControlPlane:
    def __init__(self, state_dir: pathlib.Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.build = require()
        self.lab_dir = pathlib.Path(state_dir)
        self.state_dir = self.lab_dir / "cluster"
        self.host = host
        self.port = port or free_port(host)
        self.url = f"https://{host}:{self.port}"
        self.children: list[Child] = []
        self.credentials: pki.Credentials | None = None
        self.version = ""

    # The attributes the lab's state file is made of, as the API emulator names them.
    @property
    def token(self) -> str:
        return self._credentials.tokens["admin"]

    @property
    def readonly_token(self) -> str:
        return self._credentials.tokens["readonly"]

    @property
    def ca_cert_path(self) -> pathlib.Path:
        return self._credentials.ca_cert

    @property
    def kubeconfig_path(self) -> pathlib.Path:
        return self.lab_dir / "kubeconfig"

    @property
    def readonly_kubeconfig_path(self) -> pathlib.Path:
        return self.lab_dir / "kubeconfig-readonly"

    @property
    def _credentials(self) -> pki.Credentials:
        if self.credentials is None:
            raise RuntimeError("the control plane is not started")
        return self.credentials

    @property
    def pids(self) -> dict[str, int | None]:
        return {child.name: child.pid for child in self.children}

    def api(self) -> Api:
        return Api(self.url, self.token, str(self.ca_cert_path))

    def _bin(self, command: str) -> str:
        return str(self.build / "bin" / command)

    def start(self) -> None:
        started = time.monotonic()
        # Every start is a fresh cluster, as every start of the emulator is.
        shutil.rmtree(self.state_dir, ignore_errors=True)
        logs = self.state_dir / "logs"
        credentials = self.credentials = pki.create(self.lab_dir / "pki", self.url)
        # Where the emulator keeps them, so users and scripts find them in the same place.
        shutil.copy2(credentials.kubeconfig("admin"), self.kubeconfig_path)
        shutil.copy2(credentials.kubeconfig("readonly"), self.readonly_kubeconfig_path)
        etcd_port, peer_port = free_port(self.host), free_port(self.host)
        etcd_url = f"http://{self.host}:{etcd_port}"
        etcd = self._spawn("etcd", logs, [
            "--name", "lab", "--data-dir", str(self.state_dir / "etcd"),
            "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
            "--listen-peer-urls", f"http://{self.host}:{peer_port}",
            "--initial-advertise-peer-urls", f"http://{self.host}:{peer_port}",
            "--initial-cluster", f"lab=http://{self.host}:{peer_port}",
            "--log-level", "warn", "--unsafe-no-fsync"])
        apiserver = self._spawn("kube-apiserver", logs, [
            f"--etcd-servers={etcd_url}",
            f"--bind-address={self.host}", f"--advertise-address={self.host}", f"--secure-port={self.port}",
            # No kubelet or kube-proxy runs, so the `kubernetes` Service keeps no endpoints.
            "--endpoint-reconciler-type=none",
            f"--cert-dir={self.state_dir / 'apiserver'}",
            f"--tls-cert-file={credentials.serving_cert}", f"--tls-private-key-file={credentials.serving_key}",
            f"--client-ca-file={credentials.ca_cert}", f"--token-auth-file={credentials.token_file}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={ISSUER}", f"--api-audiences={ISSUER}",
            f"--service-account-key-file={credentials.service_account_public_key}",
            f"--service-account-signing-key-file={credentials.service_account_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--profiling=false"])
        api = self.api()
        try:
            wait_until(lambda: api.session.get(self.url + "/readyz", timeout=2).status_code == 200,
                       START_TIMEOUT, "kube-apiserver /readyz", [etcd, apiserver])
            self.version = api.get("/version").get("gitVersion", "")
            # Without client rate limits, as kwokctl --disable-qps-limits: with the default 20 requests/s, rollouts of
            # many canaries at once queue behind the controller manager's client (docs/lab.md).
            component = ["--leader-elect=false", "--secure-port=0", "--kube-api-qps=5000", "--kube-api-burst=10000"]
            self._spawn("kube-controller-manager", logs, [
                f"--kubeconfig={credentials.kubeconfig('controller-manager')}", *component,
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={credentials.service_account_key}",
                f"--root-ca-file={credentials.ca_cert}",
                f"--cluster-cidr={POD_CIDR}", f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--controllers={','.join(CONTROLLERS)}"])
            self._spawn("kube-scheduler", logs, [f"--kubeconfig={credentials.kubeconfig('scheduler')}", *component])
            self._spawn("kwok", logs, [
                f"--kubeconfig={credentials.kubeconfig('kwok')}", "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={bootstrap.KWOK_NODE_ANNOTATION}=fake",
                f"--cidr={POD_CIDR}", f"--node-ip={self.host}", "--node-lease-duration-seconds=40",
                f"--config={kwok_config(self.build / 'kwok-stages.yaml', self.state_dir / 'kwok.yaml')}"])
            crds = bootstrap.apply_crds(self.api, [self.build / "crds" / "istio", self.build / "crds" / "gateway-api"])
            bootstrap.readonly_identity(api)
            bootstrap.namespaces(api)
            bootstrap.fake_nodes(api)
            wait_until(lambda: bootstrap.crds_established(api, crds), START_TIMEOUT, "the CRDs to be established",
                       self.children)
            wait_until(lambda: bootstrap.nodes_ready(api), START_TIMEOUT, "kwok's nodes to be ready", self.children)
            wait_until(lambda: bootstrap.default_service_account(api), START_TIMEOUT,
                       "the default ServiceAccount", self.children)
        finally:
            api.close()
        LOG.info("control plane %s up in %.1fs at %s", self.version, time.monotonic() - started, self.url)

    def _spawn(self, command: str, logs: pathlib.Path, arguments: list[str]) -> Child:
        child = Child(command, [self._bin(command), *arguments], logs)
        child.start()
        self.children.append(child)
        return child

    def check(self) -> None:
        """Raise when a component died: the lab is not healthy without all of them."""
        for child in self.children:
            if child.exited() is not None:
                raise RuntimeError(f"{child.name} exited with code {child.exited()}; {child.log_path} ends with:\n"
                                   f"{child.log_tail()}")

    def stop(self) -> None:
        # Every start is a fresh cluster, so nothing is lost when a component is killed. kube-apiserver's graceful
        # shutdown alone takes more than 10 s, which every test session and `lab down` would wait out.
        for child in self.children:
            child.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in self.children:
            try:
                child.wait_or_kill(max(deadline - time.monotonic(), 0.0))
            except (OSError, subprocess.SubprocessError):
                LOG.exception("stopping %s failed", child.name)
        self.children = []
