"""The canary role end to end on the lab, through the real ansible-playbook (playbooks/canary.yml)."""

from __future__ import annotations

import pathlib
import threading
import time

import pytest
import yaml

from lab.seed import demo_deployment
from lab.testing import wait_for
from tests.support.cluster_objects import config_map_names
from tests.support.modules import run_module, run_playbook
from tests.support.releases import (
    PLAYBOOK,
    SEED,
    Release,
    assert_safe,
    short_manifest,
)
from tests.support.tcp_forwarder import TcpForwarder

pytestmark = pytest.mark.slow


@pytest.fixture
def release(lab, namespace, tmp_path) -> Release:
    return Release(lab, namespace, tmp_path, manifest=short_manifest(namespace))


@pytest.fixture
def initialized(release: Release) -> Release:
    first = release.run()
    assert first.returncode == 0, first.stdout[-3000:]
    assert "primary and routing created; the next revision of %s/app will be analysed" % release.namespace in first.stdout
    assert "No new revision" not in first.stdout and release.report()["result"] == "Initialized"
    return release


def test_seed_manifest_unchanged_good_then_bad(lab, tmp_path):
    """Flagger's guide manifest as written (namespace prod): a good release is promoted, a 30 % error one rolled back."""
    from kubernetes import client  # pylint: disable=import-outside-toplevel

    api = lab.kube_client()
    core = client.CoreV1Api(api)
    if not core.list_namespace(field_selector="metadata.name=prod").items:
        core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}})
    try:
        seed = Release(lab, "prod", tmp_path, manifest_path=SEED, target=demo_deployment())
        first = seed.run(canary_interval_override="3s")
        assert first.returncode == 0, first.stdout[-3000:]
        seed.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.1")
        good = seed.run(canary_interval_override="3s")
        assert good.returncode == 0, good.stdout[-4000:]
        for step in range(1, 6):
            assert "step %d/5 weight %d%%: request-success-rate" % (step, step * 10) in good.stdout
        assert seed.template("backend-service-primary")["spec"]["containers"][0]["image"].endswith(":6.7.1")
        assert_safe(seed)
        assert seed.state()["phase"] == "Succeeded" and seed.report()["result"] == "Succeeded"

        seed.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.2",
                          annotations={"lab.progressive.delivery/error-rate": "0.3"})
        bad = seed.run(canary_interval_override="3s")
        assert bad.returncode != 0 and "request-success-rate" in bad.stdout and "rolling back" in bad.stdout
        assert seed.template("backend-service-primary")["spec"]["containers"][0]["image"].endswith(":6.7.1")
        assert_safe(seed)
        report = seed.report()
        assert report["result"] == "Failed" and seed.state()["phase"] == "Failed"
        assert any(entry["kind"] == "rollback" for entry in report["timeline"])
        assert (tmp_path / "reports" / (pathlib.Path(sorted((tmp_path / "reports").glob("*.json"))[-1]).stem + ".html")).exists()
    finally:
        core.delete_namespace("prod")


def test_wrong_manifest_fails_before_anything_changes(lab, namespace, tmp_path):
    manifest = short_manifest(namespace)
    manifest["spec"]["analysis"]["stepWeight"] = "ten"
    broken = Release(lab, namespace, tmp_path, manifest=manifest)
    result = broken.run()
    assert result.returncode != 0
    assert 'spec.analysis.stepWeight: must be an integer between 1 and 100, got \\"ten\\"' in result.stdout or \
        'spec.analysis.stepWeight: must be an integer between 1 and 100, got "ten"' in result.stdout
    assert [d.metadata.name for d in broken.apps.list_namespaced_deployment(namespace).items] == ["app"]
    assert config_map_names(broken.core, namespace) == []


def test_relative_manifest_paths_are_found_next_to_the_playbook_then_in_the_working_directory(lab, namespace, tmp_path):
    release = Release(lab, namespace, tmp_path, manifest=short_manifest(namespace))
    manifest = (tmp_path / "canary.yaml").read_text()
    # An AWX project: at its root a playbook that imports the collection's, the manifest in a directory of it; the job
    # runs in the project's root with PWD left as the shell had it.
    project = tmp_path / "project"
    (project / "manifests").mkdir(parents=True)
    (project / "manifests" / "app.yaml").write_text(manifest)
    (project / "canary.yml").write_text("- name: Canary release\n  ansible.builtin.import_playbook: progressive.delivery.canary\n")
    stale = {"PWD": "/nonexistent"}

    missing = run_playbook(project / "canary.yml", release.extra_vars(canary_manifest="manifests/nowhere.yaml"), env=stale,
                           cwd=project, timeout=300)
    assert missing.returncode != 0
    assert "canary_manifest: no file manifests/nowhere.yaml next to the playbook (" in missing.stdout, missing.stdout[-3000:]
    unset = run_playbook(PLAYBOOK, release.extra_vars(canary_manifest=""), timeout=300)
    assert unset.returncode != 0 and "canary_manifest is required" in unset.stdout, unset.stdout[-3000:]
    assert [d.metadata.name for d in release.apps.list_namespaced_deployment(namespace).items] == ["app"]

    awx = run_playbook(project / "canary.yml", release.extra_vars(canary_manifest="manifests/app.yaml"), env=stale, cwd=project,
                       timeout=300)
    assert awx.returncode == 0, awx.stdout[-3000:]
    assert release.state()["phase"] == "Initialized"

    # A playbook of the user's own that runs the role: the manifest beside it, ansible-playbook started elsewhere.
    own = project / "deploy"
    own.mkdir()
    (own / "app.yaml").write_text(manifest)
    (own / "release.yml").write_text(yaml.safe_dump([{
        "name": "Release", "hosts": "localhost", "gather_facts": False,
        "module_defaults": {"group/progressive.delivery.kubernetes": {"kubeconfig": "{{ canary_kubeconfig }}"},
                            "group/progressive.delivery.prometheus": {"prometheus_url": "{{ canary_prometheus_url }}"}},
        "roles": [{"role": "progressive.delivery.canary"}]}]))
    beside = run_playbook(own / "release.yml", release.extra_vars(canary_manifest="app.yaml"), env=stale, timeout=300)
    assert beside.returncode == 0, beside.stdout[-3000:]
    assert "No new revision of %s/app" % namespace in beside.stdout


def test_missing_target_fails_with_its_error_and_changes_nothing(lab, namespace, tmp_path):
    from kubernetes import client  # pylint: disable=import-outside-toplevel

    manifest = short_manifest(namespace)
    manifest["spec"]["targetRef"]["name"] = "app-typo"
    release = Release(lab, namespace, tmp_path, manifest=manifest)
    result = release.run()
    assert result.returncode != 0
    assert "Deployment %s/app-typo" % namespace in result.stdout and "was not found" in result.stdout, result.stdout[-3000:]
    assert "Could not put the service back" not in result.stdout and "vs_weight" not in result.stdout
    assert "were not changed" in result.stdout
    assert release.report()["result"] == "Error"
    assert [d.metadata.name for d in release.apps.list_namespaced_deployment(namespace).items] == ["app"]
    assert release.custom.list_namespaced_custom_object("networking.istio.io", "v1", namespace, "virtualservices")["items"] == []
    assert config_map_names(release.core, namespace) == []
    assert client.CoordinationV1Api(release.api).list_namespaced_lease(namespace).items == []


def test_unreachable_prometheus_stops_before_the_canary_starts(initialized: Release):
    initialized.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.1")
    result = initialized.run(canary_prometheus_url="http://127.0.0.1:9")
    assert result.returncode != 0
    assert "the canary was not started" in result.stdout or "configuration error" in result.stdout, result.stdout[-3000:]
    assert "Could not put the service back" not in result.stdout
    assert initialized.report()["result"] == "Error"
    assert initialized.state()["phase"] == "Initialized" and initialized.state()["canaryWeight"] == 0
    assert_safe(initialized)
    # Nothing was spent on the revision: a run with the right URL analyses and promotes it.
    assert initialized.run().returncode == 0
    assert initialized.template("app-primary")["spec"]["containers"][0]["image"].endswith(":6.7.1")


def test_match_without_iterations_is_refused_before_anything_changes(lab, namespace, tmp_path):
    # Flagger would walk the weights on the matching requests only; the plan names both fields instead.
    manifest = short_manifest(namespace, match=[{"headers": {"x-canary": {"exact": "insider"}}}])
    release = Release(lab, namespace, tmp_path, manifest=manifest)
    result = release.run()
    assert result.returncode != 0
    assert "spec.analysis.match: needs spec.analysis.iterations" in result.stdout, result.stdout[-3000:]
    deployments = [d.metadata.name for d in release.apps.list_namespaced_deployment(namespace).items]
    assert deployments == ["app"] and config_map_names(release.core, namespace) == []


def test_suspended_canary_changes_nothing_not_even_the_target(initialized: Release):
    manifest = dict(initialized.manifest, spec=dict(initialized.manifest["spec"], suspend=True))
    initialized.manifest_path.write_text(yaml.safe_dump(manifest))
    before = initialized.template()
    result = initialized.run(canary_image="ghcr.io/stefanprodan/podinfo:6.7.9")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Canary is suspended (spec.suspend): nothing changes, the target included" in result.stdout
    assert initialized.template() == before and initialized.state()["phase"] == "Initialized"
    assert initialized.report()["result"] == "NothingToDo"


def test_latency_regression_fails(initialized: Release):
    initialized.set_template(annotations={"lab.progressive.delivery/latency-ms": "900"})
    result = initialized.run()
    assert result.returncode != 0, result.stdout[-3000:]
    assert "request-duration" in result.stdout and initialized.report()["result"] == "Failed"
    assert_safe(initialized)


def test_never_ready_canary_fails_on_progress_deadline(lab, namespace, tmp_path):
    manifest = short_manifest(namespace)
    manifest["spec"]["progressDeadlineSeconds"] = 3
    release = Release(lab, namespace, tmp_path, manifest=manifest)
    assert release.run().returncode == 0
    release.set_template(annotations={"lab.progressive.delivery/ready": "false"})
    result = release.run()
    assert result.returncode != 0
    assert "never became ready" in result.stdout
    assert release.report()["result"] == "Failed" and release.state()["phase"] == "Failed"
    assert_safe(release)


def test_second_concurrent_run_is_refused_naming_the_holder(initialized: Release, k8s_auth):
    held = run_module("canary_step", dict(k8s_auth, action="lock", name="app", namespace=initialized.namespace,
                                          run_id="other-run", holder="awx job 42 on host ctl", lease_ttl=300))
    assert not held.get("failed"), held
    initialized.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.1")
    result = initialized.run()
    assert result.returncode != 0
    assert "locked by another run" in result.stdout and "awx job 42 on host ctl" in result.stdout
    assert initialized.template("app-primary")["spec"]["containers"][0]["image"].endswith(":6.7.0")


def test_failing_rollout_webhook_counts_as_failed_checks(lab, namespace, tmp_path):
    hooks = [{"name": "load-test", "type": "rollout", "url": lab.hooks_url + "/",
              "metadata": {"type": "bash", "cmd": "exit 3"}}]
    release = Release(lab, namespace, tmp_path, manifest=short_manifest(namespace, webhooks=hooks))
    assert release.run().returncode == 0
    release.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.1")
    result = release.run()
    assert result.returncode != 0
    report = release.report()
    assert report["result"] == "Failed" and "webhook load-test failed" in report["reason"]
    assert report["failed_checks"] == 2
    assert release.state()["failedChecks"] == 2
    assert_safe(release)


def test_prometheus_stopped_during_analysis_never_promotes(lab, initialized: Release):
    initialized.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.1")
    # This run reaches the lab's Prometheus through a forwarder of its own: closing it stops Prometheus for this run
    # only, while tests in other workers keep theirs.
    forwarder = TcpForwarder(lab.prometheus_url)
    process = initialized.popen(canary_prometheus_url=forwarder.url)
    try:
        wait_for(lambda: initialized.state().get("canaryWeight", 0) > 0, timeout=60, message="analysis at a weight > 0")
        forwarder.close()
        output, _ = process.communicate(timeout=120)
    finally:
        forwarder.close()
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0, output[-3000:]
    assert "Prometheus" in initialized.report()["reason"] or "error" in initialized.report()["reason"]
    assert initialized.state()["phase"] == "Failed"
    assert initialized.template("app-primary")["spec"]["containers"][0]["image"].endswith(":6.7.0")
    assert_safe(initialized)


@pytest.mark.parametrize("on_resume", ["resume", "rollback"])
def test_killed_run_is_resumed_or_rolled_back(lab, namespace, tmp_path, on_resume):
    manifest = short_manifest(namespace, stepWeights=[20, 40, 60])
    release = Release(lab, namespace, tmp_path, manifest=manifest)
    assert release.run(canary_lease_ttl=5).returncode == 0
    release.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.1")
    seen: set[int] = set()
    stop = threading.Event()

    def watch_weights() -> None:
        while not stop.is_set():
            try:
                seen.add(release.weights()["app-canary"])
            except Exception:  # pylint: disable=broad-except
                pass
            time.sleep(0.05)

    watcher = threading.Thread(target=watch_weights, daemon=True)
    watcher.start()
    try:
        process = release.popen(canary_lease_ttl=5)
        wait_for(lambda: release.state().get("phase") == "Progressing" and release.state().get("canaryWeight", 0) > 0,
                 timeout=60, message="analysis at a weight > 0")
        process.kill()
        process.wait(timeout=10)
        recorded = release.state()["canaryWeight"]
        again = release.run(canary_lease_ttl=5, canary_lock_wait=20, canary_on_resume=on_resume)
    finally:
        stop.set()
        watcher.join(timeout=5)
    assert seen <= {0, 20, 40, 60}, seen
    if on_resume == "resume":
        assert again.returncode == 0, again.stdout[-3000:]
        assert "Resuming the release left by run" in again.stdout and "at weight %d%%" % recorded in again.stdout
        assert release.state()["phase"] == "Succeeded"
        assert release.template("app-primary")["spec"]["containers"][0]["image"].endswith(":6.7.1")
    else:
        assert again.returncode != 0
        assert "Rolling back the release left by run" in again.stdout
        assert release.state()["phase"] == "Failed"
        assert release.template("app-primary")["spec"]["containers"][0]["image"].endswith(":6.7.0")
    assert_safe(release)


def test_killed_run_with_a_changed_target_restarts_from_the_primary(lab, namespace, tmp_path):
    """A new revision replaces the one a dead run was analysing: nothing of the dead run's position carries over."""
    manifest = short_manifest(namespace, stepWeights=[20, 40, 60])
    release = Release(lab, namespace, tmp_path, manifest=manifest)
    assert release.run(canary_lease_ttl=5).returncode == 0
    release.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.1")
    process = release.popen(canary_lease_ttl=5)
    try:
        wait_for(lambda: release.state().get("phase") == "Progressing" and release.state().get("canaryWeight", 0) > 0,
                 timeout=60, message="analysis at a weight > 0")
    finally:
        process.kill()
        process.wait(timeout=10)
    recorded = release.state()["canaryWeight"]
    release.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.2")
    assert release.weights()["app-canary"] == recorded

    seen: list[int] = []
    stop = threading.Event()

    def watch_weights() -> None:
        while not stop.is_set():
            try:
                weight = release.weights()["app-canary"]
            except Exception:  # pylint: disable=broad-except
                weight = None
            if weight is not None and (not seen or seen[-1] != weight):
                seen.append(weight)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch_weights, daemon=True)
    watcher.start()
    try:
        again = release.run(canary_lease_ttl=5, canary_lock_wait=20)
    finally:
        stop.set()
        watcher.join(timeout=5)
    assert again.returncode == 0, again.stdout[-3000:]
    # Traffic left the unanalysed revision first, then climbed the steps again from the first one.
    assert seen[:5] == [recorded, 0, 20, 40, 60], seen
    assert "Restarting the analysis from step 1" in again.stdout and "replaced revision" in again.stdout
    state = release.state()
    assert state["phase"] == "Succeeded" and state["failedChecks"] == 0
    assert any("restarting it" in (entry.get("message") or "") for entry in state["history"]), state["history"]
    assert release.template("app-primary")["spec"]["containers"][0]["image"].endswith(":6.7.2")
    assert_safe(release)
