"""Credentials of the lab's control plane: serving certificate, service-account keys, static tokens.

The components and the lab's two users authenticate with bearer tokens from
kube-apiserver's static token file; what each may do is decided by RBAC
alone. The bootstrap policy of Kubernetes already knows the controller
manager and the scheduler by the user names used here.
"""
from __future__ import annotations

import csv
import pathlib
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lab.kube import kubeconfig, tls

SERVICE_CLUSTER_IP = "10.96.0.1"
ADMIN_USER = "lab-admin"
READONLY_USER = "lab-readonly"
# name -> (user, groups)
IDENTITIES = {
    "admin": (ADMIN_USER, ("system:masters",)),
    "readonly": (READONLY_USER, ()),
    "controller-manager": ("system:kube-controller-manager", ()),
    "scheduler": ("system:kube-scheduler", ()),
    "kwok": ("lab-kwok", ("system:masters",)),
}


@dataclass(frozen=True)
class Credentials:
    directory: pathlib.Path
    ca_cert: pathlib.Path
    serving_cert: pathlib.Path
    serving_key: pathlib.Path
    service_account_key: pathlib.Path
    service_account_public_key: pathlib.Path
    token_file: pathlib.Path
    tokens: dict[str, str]

    def kubeconfig(self, name: str) -> pathlib.Path:
        return self.directory / f"{name}.kubeconfig"


def _write_service_account_keys(directory: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    private = directory / "sa.key"
    public = directory / "sa.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    private.chmod(0o600)
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def create(directory: pathlib.Path, server_url: str) -> Credentials:
    """Fresh keys, tokens and one kubeconfig per identity, all under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, serving_cert, serving_key = tls.generate(directory, hosts=("127.0.0.1", "localhost", SERVICE_CLUSTER_IP,
                                                                        "kubernetes.default.svc.cluster.local"))
    sa_key, sa_pub = _write_service_account_keys(directory)
    tokens = {name: secrets.token_hex(24) for name in IDENTITIES}
    token_file = directory / "tokens.csv"
    with open(token_file, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        for name, (user, groups) in IDENTITIES.items():
            writer.writerow([tokens[name], user, f"{user}-uid", ",".join(groups)] if groups else
                            [tokens[name], user, f"{user}-uid"])
    token_file.chmod(0o600)
    credentials = Credentials(directory, ca_cert, serving_cert, serving_key, sa_key, sa_pub, token_file, tokens)
    for name, (user, _groups) in IDENTITIES.items():
        kubeconfig.write(credentials.kubeconfig(name), server_url, ca_cert, tokens[name], user)
    return credentials
