"""What ships: the collection tarball, the execution environment's ansible-core, the licence."""
from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_GALAXY = Path(sys.executable).with_name("ansible-galaxy")

# Never in the tarball: development and test material.
NEVER_SHIPPED = ("lab/", "tests/", "benchmarks/", "molecule/", "scripts/", "execution-environment/", "reports/", "build/")


def _ee_ansible_core_pin() -> Requirement:
    ee = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    return Requirement(ee["dependencies"]["ansible_core"]["package_pip"])


def _exact_version(requirement: Requirement) -> Version:
    specifiers = list(requirement.specifier)
    assert len(specifiers) == 1 and specifiers[0].operator == "==", (
        f"{requirement} is not a pin: the execution environment must get one exact ansible-core"
    )
    return Version(specifiers[0].version)


def test_execution_environment_pins_an_ansible_core_that_meets_requires_ansible():
    pin = _ee_ansible_core_pin()
    assert pin.name == "ansible-core"
    version = _exact_version(pin)
    requires = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())["requires_ansible"]
    assert SpecifierSet(requires).contains(version), (
        f"execution-environment.yml installs ansible-core {version}, which meta/runtime.yml's "
        f"requires_ansible {requires!r} rejects"
    )


def test_execution_environment_gets_the_ansible_core_the_tests_run():
    pins = {}
    for line in (ROOT / "requirements-dev.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            requirement = Requirement(line)
            pins[requirement.name] = requirement
    assert _exact_version(_ee_ansible_core_pin()) == _exact_version(pins["ansible-core"])


def test_license_is_the_gpl_3_text_galaxy_yml_names():
    text = (ROOT / "LICENSE").read_text()
    assert text.split()[:6] == ["GNU", "GENERAL", "PUBLIC", "LICENSE", "Version", "3,"]
    assert "END OF TERMS AND CONDITIONS" in text
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    assert galaxy["license"] == ["GPL-3.0-or-later"]


def test_runtime_requirements_do_not_list_unused_libraries():
    names = [Requirement(line).name.lower() for line in (ROOT / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    sources = "\n".join(path.read_text() for path in (ROOT / "plugins").rglob("*.py"))
    import_names = {"pyyaml": "yaml"}
    for name in names:
        module = import_names.get(name, name)
        assert f"import {module}" in sources or f"from {module}" in sources, f"{name} is required but not imported"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, set[str], list[str]]:
    """Build the collection from a copy of the checkout with stray files planted in it."""
    source = tmp_path_factory.mktemp("checkout") / "delivery"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", ".lab", ".pytest_cache", "__pycache__", "*.tar.gz"))
    strays = [
        "examples/fleet/reports/run.json",
        "reports/podinfo/report.html",
        "plugins/modules/__pycache__/vs_weight.cpython-311.pyc",
        "plugins/module_utils/__pycache__/notes.yml",
        "docs/.draft.md",
        "playbooks/canary.retry",
        "roles/canary/tasks/main.yml~",
        ".ansible/collections/cached.yml",
    ]
    for stray in strays:
        (source / stray).parent.mkdir(parents=True, exist_ok=True)
        (source / stray).write_text("stray\n")
    out = tmp_path_factory.mktemp("out")
    subprocess.run([str(ANSIBLE_GALAXY), "collection", "build", "--output-path", str(out), str(source)],
                   check=True, capture_output=True, text=True)
    (tarball,) = out.glob("*.tar.gz")
    with tarfile.open(tarball) as archive:
        names = {member.name for member in archive.getmembers() if member.isfile()}
    for stray in strays:
        assert (source / stray).is_file()
    return source, names, strays


def test_build_ships_what_users_need(built):
    source, names, strays = built
    expected = {"LICENSE", "README.md", "requirements.txt", "meta/runtime.yml", "meta/execution-environment.yml",
                "changelogs/changelog.yaml"}
    for top in ("plugins", "roles", "playbooks"):
        expected |= {str(path.relative_to(source)) for path in (source / top).rglob("*")
                     if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".yml", ".md")}
    expected |= {str(path.relative_to(source)) for path in (source / "docs").glob("*.md")}
    missing = sorted(expected - names - set(strays))
    assert not missing, f"not in the tarball: {missing}"


def test_build_ships_no_stray_or_development_files(built):
    _, shipped, strays = built
    assert not set(strays) & shipped, f"stray files shipped: {sorted(set(strays) & shipped)}"
    development = sorted(name for name in shipped if name.startswith(NEVER_SHIPPED) or name.startswith("."))
    assert not development, f"development files shipped: {development}"
    assert not any("__pycache__" in name or name.endswith((".pyc", "~", ".retry")) for name in shipped)
