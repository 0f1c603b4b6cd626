"""Kubeconfig files pointing ordinary clients at the emulated API server."""
from __future__ import annotations

import pathlib

import yaml


def write(path: pathlib.Path, server_url: str, ca_path: pathlib.Path, token: str, user: str,
          context: str = "lab", namespace: str = "default") -> pathlib.Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "lab", "cluster": {"server": server_url, "certificate-authority": str(ca_path)}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": "lab", "user": user, "namespace": namespace}}],
        "current-context": context,
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path
