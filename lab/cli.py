"""python -m lab up|down|status|serve|fault|prometheus

Exit codes: 0 success, 1 the lab is not (or not fully) running or an action
failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import pathlib
import sys
import time
from typing import Any

from lab import control
from lab.cluster.binaries import ControlPlaneMissing, require
from lab.runtime import BACKENDS, default_backend

BACKEND_NAMES = {"cluster": "the real control plane (build/controlplane)", "emulated": "the Kubernetes API emulator"}
BACKEND_HELP = ("cluster: the real control plane built by `make controlplane`; emulated: the API emulator; "
                "auto (default, or $LAB_BACKEND): cluster when it is built")

ENDPOINT_KEYS = ("kube_url", "kubeconfig", "readonly_kubeconfig", "prometheus_url", "pushgateway_url", "mesh_url", "hooks_url")


def _state_dir(args: argparse.Namespace) -> pathlib.Path:
    return pathlib.Path(args.state_dir).resolve() if args.state_dir else control.default_state_dir()


def _print_endpoints(info: dict[str, Any]) -> None:
    for key in ENDPOINT_KEYS:
        print(f"  {key:<20} {info.get(key)}")
    pids = info.get("pids") or {}
    print(f"  {'backend':<20} {info.get('backend', 'emulated')} ({info.get('kube_version', '')})")
    print(f"  {'pids':<20} " + " ".join(f"{name}={pid}" for name, pid in pids.items()))


def cmd_up(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    info = control.read_state(state_dir)
    if info and control.process_alive(info.get("pids", {}).get("lab"), "lab"):
        problems = {k: v for k, v in control.health(info).items() if v}
        if not problems:
            print(f"lab already up ({state_dir})")
            _print_endpoints(info)
            return 0
        print(f"a lab is running from {state_dir} but does not answer: {problems}; run `python -m lab down` first",
              file=sys.stderr)
        return 1
    leftovers = control.stop_lab(state_dir)
    if leftovers:
        print(f"could not stop the previous lab in {state_dir}: {', '.join(leftovers)}", file=sys.stderr)
        return 1
    try:
        backend = _backend(args)
    except (ValueError, ControlPlaneMissing) as error:
        print(str(error), file=sys.stderr)
        return 2
    print(f"starting the lab on {BACKEND_NAMES[backend]} ({state_dir})")
    started = time.monotonic()
    process = control.spawn_serve(state_dir, seed=args.seed, prometheus=True, detach=True, backend=backend)
    try:
        info = control.wait_until_up(state_dir, process, args.timeout)
    except control.LabError as error:
        print(str(error), file=sys.stderr)
        control.stop_lab(state_dir)
        return 1
    print(f"lab up in {time.monotonic() - started:.1f}s ({state_dir})")
    _print_endpoints(info)
    return 0


def _backend(args: argparse.Namespace) -> str:
    backend = default_backend() if args.backend == "auto" else args.backend
    if backend == "cluster":
        require()
    return backend


def cmd_down(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    info = control.read_state(state_dir)
    if info is None and control.read_pid_file(state_dir) is None:
        print(f"lab is not running ({state_dir})")
        return 0
    leftovers = control.stop_lab(state_dir, timeout=args.timeout)
    if leftovers:
        print(f"still running after stop: {', '.join(leftovers)}", file=sys.stderr)
        return 1
    print(f"lab down ({state_dir})")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    info = control.read_state(state_dir)
    if info is None or not control.process_alive(info.get("pids", {}).get("lab"), "lab"):
        if args.json:
            print(json.dumps({"state_dir": str(state_dir), "running": False}))
        else:
            print(f"lab is not running ({state_dir}); start it with `python -m lab up`")
        return 1
    problems = control.health(info)
    healthy = not any(problems.values())
    if args.json:
        print(json.dumps({"state_dir": str(state_dir), "running": True, "healthy": healthy,
                          "health": problems, **{k: info.get(k) for k in ENDPOINT_KEYS}, "pids": info.get("pids")}))
        return 0 if healthy else 1
    print(f"lab {'up' if healthy else 'DEGRADED'} ({state_dir})")
    _print_endpoints(info)
    for name, problem in problems.items():
        print(f"  {name + ' health':<20} {'ok' if problem is None else problem}")
    return 0 if healthy else 1


def cmd_serve(args: argparse.Namespace) -> int:
    from lab.runtime import serve  # pylint: disable=import-outside-toplevel
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        backend = _backend(args)
    except (ValueError, ControlPlaneMissing) as error:
        print(str(error), file=sys.stderr)
        return 2
    return serve(_state_dir(args), seed_demo=args.seed, host=args.host, prometheus=not args.no_prometheus,
                 ports={"kube": args.kube_port, "mesh": args.mesh_port, "hooks": args.hooks_port,
                        "prometheus": args.prometheus_port}, backend=backend)


def _running_info(args: argparse.Namespace) -> dict[str, Any]:
    state_dir = _state_dir(args)
    info = control.read_state(state_dir)
    if info is None:
        raise control.LabError(f"lab is not running ({state_dir}); start it with `python -m lab up`")
    return info


def cmd_fault(args: argparse.Namespace) -> int:
    info = _running_info(args)
    if args.fault_command == "add":
        fault_id = control.add_fault(info, args.method, args.path, status=args.status, delay=args.delay,
                                     ratio=args.ratio, count=args.count)
        print(fault_id)
    elif args.fault_command == "clear":
        control.clear_faults(info)
        print("faults cleared")
    else:
        print(json.dumps(control.list_faults(info), indent=2))
    return 0


def cmd_prometheus(args: argparse.Namespace) -> int:
    result = control.prometheus_action(_running_info(args), args.action)
    print(json.dumps(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lab", description="A local stand-in cluster: Kubernetes API, "
                                     "workloads, Istio-style mesh telemetry, Prometheus, load-tester hooks.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir", help="where the lab keeps its state (default: $LAB_STATE_DIR or <repo>/.lab)")
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", parents=[common], help="start the lab in the background (idempotent)")
    up.add_argument("--seed", action=argparse.BooleanOptionalAction, default=True,
                    help="create the demo objects: namespace prod, Deployment backend-service (default: yes)")
    up.add_argument("--backend", choices=("auto",) + BACKENDS, default="auto", help=BACKEND_HELP)
    up.add_argument("--timeout", type=float, default=control.DEFAULT_UP_TIMEOUT, help="seconds to wait for every endpoint")
    up.set_defaults(func=cmd_up)

    down = commands.add_parser("down", parents=[common], help="stop the lab and its Prometheus")
    down.add_argument("--timeout", type=float, default=control.DEFAULT_DOWN_TIMEOUT)
    down.set_defaults(func=cmd_down)

    status = commands.add_parser("status", parents=[common], help="print endpoints and health")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    serve = commands.add_parser("serve", parents=[common], help="run the lab in the foreground")
    serve.add_argument("--seed", action="store_true", help="create the demo objects")
    serve.add_argument("--backend", choices=("auto",) + BACKENDS, default="auto", help=BACKEND_HELP)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--no-prometheus", action="store_true", help="do not start Prometheus (start it later on demand)")
    for part in ("kube", "mesh", "hooks", "prometheus"):
        serve.add_argument(f"--{part}-port", type=int, default=0, help=f"port of the {part} endpoint (default: a free one)")
    serve.set_defaults(func=cmd_serve)

    fault = commands.add_parser("fault", help="inject API faults")
    fault_commands = fault.add_subparsers(dest="fault_command", required=True)
    add = fault_commands.add_parser("add", parents=[common], help="answer matching API requests with an error and/or delay")
    add.add_argument("--method", default="*", help="HTTP method, or * for any")
    add.add_argument("--path", required=True, help="regular expression searched in the request path")
    add.add_argument("--status", type=int, help="HTTP status to answer, e.g. 500 or 409")
    add.add_argument("--delay", type=float, default=0.0, help="seconds to wait before answering")
    add.add_argument("--ratio", type=float, default=1.0, help="share of matching requests affected (0-1)")
    add.add_argument("--count", type=int, help="stop after this many matches")
    fault_commands.add_parser("clear", parents=[common], help="remove every fault")
    fault_commands.add_parser("list", parents=[common], help="show the faults")
    fault.set_defaults(func=cmd_fault)

    prometheus = commands.add_parser("prometheus", parents=[common], help="stop or start the lab's Prometheus")
    prometheus.add_argument("action", choices=("stop", "start", "status"))
    prometheus.set_defaults(func=cmd_prometheus)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except control.LabError as error:
        print(str(error), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
