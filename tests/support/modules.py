"""Run the collection's modules and playbooks the way Ansible does, for tests and benchmarks."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
COLLECTIONS_PATH = REPO_ROOT / "build" / "collections"
MODULE_PACKAGE = "ansible_collections.progressive.delivery.plugins.modules"


def ensure_collection_layout() -> pathlib.Path:
    """Make ``ansible_collections/progressive/delivery`` point at the checkout."""
    link = COLLECTIONS_PATH / "ansible_collections" / "progressive" / "delivery"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(REPO_ROOT, link.parent))
    return COLLECTIONS_PATH


def _environment(env: dict | None) -> dict:
    merged = dict(os.environ)
    merged["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ensure_collection_layout()), merged.get("PYTHONPATH")]))
    merged["ANSIBLE_COLLECTIONS_PATH"] = str(COLLECTIONS_PATH)
    merged.update(env or {})
    return merged


def run_module(name: str, args: dict, check_mode: bool = False, diff: bool = False, env: dict | None = None,
               timeout: float = 300) -> dict:
    """Run ``plugins/modules/<name>.py`` in its own process with Ansible's argument file; return its JSON result."""
    module_args = dict(args)
    module_args["_ansible_check_mode"] = check_mode
    module_args["_ansible_diff"] = diff
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": module_args}, handle)
        args_path = handle.name
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "%s.%s" % (MODULE_PACKAGE, name), args_path],
            capture_output=True, text=True, env=_environment(env), timeout=timeout, check=False)
    finally:
        os.unlink(args_path)
    result = _last_json_object(completed.stdout)
    if result is None:
        raise AssertionError("module %s printed no JSON result (rc=%s)\nstdout:\n%s\nstderr:\n%s"
                             % (name, completed.returncode, completed.stdout, completed.stderr))
    result.setdefault("rc", completed.returncode)
    result["_stderr"] = completed.stderr
    return result


def _last_json_object(stdout: str) -> dict | None:
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def run_playbook(playbook_path, extra_vars: dict | None = None, env: dict | None = None, check: bool = False,
                 verbosity: int = 0, timeout: float = 900, inventory: str = "localhost,",
                 cwd: pathlib.Path | str | None = None) -> subprocess.CompletedProcess:
    """Run a playbook with the real ``ansible-playbook`` against localhost, from the repository or ``cwd``."""
    command = [str(pathlib.Path(sys.executable).parent / "ansible-playbook"), "-i", inventory, "-c", "local",
               str(playbook_path)]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    if check:
        command.append("--check")
    if verbosity:
        command.append("-" + "v" * verbosity)
    merged = _environment(env)
    merged.setdefault("ANSIBLE_PYTHON_INTERPRETER", sys.executable)
    merged.setdefault("ANSIBLE_NOCOLOR", "1")
    merged.setdefault("ANSIBLE_FORCE_COLOR", "0")
    return subprocess.run(command, capture_output=True, text=True, env=merged, timeout=timeout, check=False,
                          cwd=str(cwd or REPO_ROOT))
