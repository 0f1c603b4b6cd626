"""Where the lab finds the control plane that `make controlplane` built."""
from __future__ import annotations

import os
import pathlib

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
COMMANDS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
BUILD_HINT = ("run `make controlplane` to build it from the pinned upstream sources "
              "(about 16 minutes the first time on 2 cores, seconds afterwards)")


class ControlPlaneMissing(RuntimeError):
    pass


def build_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("LAB_CONTROLPLANE_DIR") or REPO_ROOT / "build" / "controlplane").resolve()


def missing(directory: pathlib.Path | None = None) -> list[str]:
    directory = directory or build_dir()
    wanted = [directory / "bin" / command for command in COMMANDS]
    wanted += [directory / "kwok-stages.yaml", directory / "crds" / "istio", directory / "crds" / "gateway-api"]
    return [str(path) for path in wanted if not path.exists()]


def require(directory: pathlib.Path | None = None) -> pathlib.Path:
    directory = directory or build_dir()
    absent = missing(directory)
    if absent:
        raise ControlPlaneMissing(f"the control plane is not built ({', '.join(absent)} missing): {BUILD_HINT}")
    return directory
