"""A fleet released by one playbook run (examples/fleet/release.yml): one canary per inventory host, -f N."""

from __future__ import annotations

import json
import uuid

import pytest
import yaml

from tests.support.modules import REPO_ROOT, run_playbook
from tests.support.releases import FAST, Release, assert_safe, short_manifest

pytestmark = pytest.mark.slow

FLEET_PLAYBOOK = REPO_ROOT / "examples" / "fleet" / "release.yml"
SIZE = 5
BAD = "svc-3"


@pytest.fixture
def fleet(lab, tmp_path):
    """Five canaries in namespaces of their own, and an inventory with one host each."""
    from kubernetes import client  # pylint: disable=import-outside-toplevel

    core = client.CoreV1Api(lab.kube_client())
    suffix = uuid.uuid4().hex[:6]
    releases: dict[str, Release] = {}
    try:
        for index in range(SIZE):
            host = "svc-%d" % index
            namespace = "fleet-%s-%d" % (suffix, index)
            core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
            directory = tmp_path / host
            directory.mkdir()
            releases[host] = Release(lab, namespace, directory, manifest=short_manifest(namespace))
        inventory = tmp_path / "inventory.yml"
        inventory.write_text(yaml.safe_dump({"all": {
            "vars": {"ansible_connection": "local"},
            "hosts": {host: {"canary_manifest": str(release.manifest_path)} for host, release in releases.items()}}}))
        yield releases, inventory
    finally:
        for release in releases.values():
            core.delete_namespace(release.namespace)


def run_fleet(lab, inventory, tmp_path):
    extra = {"canary_kubeconfig": lab.kubeconfig, "canary_prometheus_url": lab.prometheus_url,
             "fleet_report_dir": str(tmp_path / "reports")}
    extra.update(FAST)
    return run_playbook(FLEET_PLAYBOOK, extra, inventory=str(inventory), env={"ANSIBLE_FORKS": str(SIZE)}, timeout=600)


def last_report(tmp_path, host: str) -> dict:
    reports = sorted((tmp_path / "reports" / host).glob("*.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(reports[-1].read_text())


def test_one_bad_canary_is_rolled_back_and_the_others_are_promoted(lab, fleet, tmp_path):
    releases, inventory = fleet
    first = run_fleet(lab, inventory, tmp_path)
    assert first.returncode == 0, first.stdout[-4000:]
    for host in releases:
        assert '"msg": "%s: Initialized' % host in first.stdout, first.stdout[-4000:]
    assert "all %d canaries succeeded" % SIZE in first.stdout

    for host, release in releases.items():
        release.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.1",
                             annotations={"lab.progressive.delivery/error-rate": "0.3"} if host == BAD else None)
    second = run_fleet(lab, inventory, tmp_path)
    output = second.stdout

    # The bad canary fails the run, but only after every canary has its outcome, and the outcome names each one.
    assert second.returncode != 0, output[-4000:]
    assert "1 of %d canaries did not succeed" % SIZE in output, output[-4000:]
    assert '"msg": "%s: Failed - ' % BAD in output and "request-success-rate" in output, output[-4000:]
    for host, release in releases.items():
        assert_safe(release)
        primary = release.template(release.name + "-primary")["spec"]["containers"][0]["image"]
        if host == BAD:
            assert primary.endswith(":6.7.0"), primary
            report = last_report(tmp_path, host)
            assert release.state()["phase"] == "Failed" and report["result"] == "Failed"
            assert any(entry["kind"] == "rollback" for entry in report["timeline"])
        else:
            assert '"msg": "%s: Succeeded' % host in output, output[-4000:]
            assert primary.endswith(":6.7.1"), (host, primary)
            assert release.state()["phase"] == "Succeeded" and last_report(tmp_path, host)["result"] == "Succeeded"
