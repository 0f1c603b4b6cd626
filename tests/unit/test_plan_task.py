"""The plan stage: files found where Ansible users expect them, templates from the cluster only when missing, errors
that name the option and never the secrets."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from ansible_collections.progressive.delivery.plugins.module_utils.release.plan_task import (
    PlanTaskError,
    find_file,
    plan_line,
    plan_release,
)

SEED = pathlib.Path(__file__).resolve().parents[2] / "examples" / "backend-service-canary.yaml"
TEMPLATE = {"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
            "metadata": {"name": "not-found-percentage", "namespace": "istio-system"},
            "spec": {"provider": {"type": "prometheus", "address": "http://prometheus:9090"},
                     "query": "sum(rate(istio_requests_total{response_code='404'}[{{ interval }}]))"}}


def with_template_ref(manifest: dict) -> dict:
    manifest = yaml.safe_load(yaml.safe_dump(manifest))
    manifest["spec"]["analysis"]["metrics"].append(
        {"name": "404s", "templateRef": {"name": "not-found-percentage", "namespace": "istio-system"},
         "thresholdRange": {"max": 5}, "interval": "1m"})
    return manifest


def no_cluster(refs):
    raise AssertionError("the cluster was read for %s" % refs)


def test_a_relative_path_is_found_next_to_the_playbook_before_the_working_directory(tmp_path, monkeypatch):
    beside, cwd = tmp_path / "project", tmp_path / "job"
    beside.mkdir()
    cwd.mkdir()
    (cwd / "canary.yaml").write_text("in the job's directory")
    monkeypatch.chdir(cwd)
    assert find_file("canary.yaml", str(beside)) == str(cwd / "canary.yaml")
    (beside / "canary.yaml").write_text("next to the playbook")
    assert find_file("canary.yaml", str(beside)) == str(beside / "canary.yaml")


def test_the_seed_manifest_is_planned_from_its_path_without_reading_the_cluster(tmp_path):
    (tmp_path / "canary.yaml").write_text(SEED.read_text())
    planned = plan_release({"manifest": "canary.yaml"}, str(tmp_path), no_cluster)
    plan = planned["plan"]
    assert (plan["name"], plan["namespace"], plan["steps"], planned["cluster_templates"]) == (
        "backend-service", "prod", [10, 20, 30, 40, 50], 0)
    line = plan_line(plan, "run-1", "fast")
    assert line.startswith("Canary prod/backend-service (run run-1, fast mode): canary strategy, weight 10%")
    assert "metrics request-success-rate, request-duration" in line


def test_a_missing_file_names_the_option_and_where_it_was_looked_for(tmp_path):
    with pytest.raises(PlanTaskError, match=r"canary_manifest: no file nowhere.yaml next to the playbook \(%s\) or in "
                                            r"the directory ansible-playbook runs in" % tmp_path):
        plan_release({"manifest": "nowhere.yaml"}, str(tmp_path), no_cluster)
    (tmp_path / "canary.yaml").write_text(SEED.read_text())
    with pytest.raises(PlanTaskError, match="canary_metric_templates: no file /nowhere/t.yaml$"):
        plan_release({"manifest": "canary.yaml", "metric_templates": ["/nowhere/t.yaml"]}, str(tmp_path), no_cluster)


@pytest.mark.parametrize("manifest", [None, "", {}])
def test_no_manifest_is_refused(manifest):
    with pytest.raises(PlanTaskError, match="canary_manifest is required"):
        plan_release({"manifest": manifest}, "/", no_cluster)


def test_templates_the_manifest_misses_come_from_the_cluster_and_given_ones_do_not():
    manifest = with_template_ref(yaml.safe_load(SEED.read_text()))
    asked = []

    def cluster(refs):
        asked.append(refs)
        return [TEMPLATE]

    planned = plan_release({"manifest": manifest}, "/", cluster)
    assert asked == [[{"name": "not-found-percentage", "namespace": "istio-system"}]]
    assert planned["cluster_templates"] == 1
    assert [m["name"] for m in planned["plan"]["metrics"]][-1] == "404s"
    assert plan_release({"manifest": manifest, "metric_templates": [TEMPLATE]}, "/", no_cluster)["cluster_templates"] == 0


def test_invalid_yaml_says_where_without_quoting_the_line():
    with pytest.raises(PlanTaskError) as raised:
        plan_release({"manifest": "kind: Canary\nspec: {token: s3cret\n"}, "/", no_cluster)
    assert "the Canary manifest is not valid YAML at line" in raised.value.message
    assert "s3cret" not in raised.value.message


def test_an_invalid_manifest_never_quotes_webhook_metadata():
    manifest = yaml.safe_load(SEED.read_text())
    manifest["spec"]["analysis"]["webhooks"] = [{"name": "load", "url": "http://tester/", "type": "sideways",
                                                  "metadata": {"token": "s3cret"}}]
    with pytest.raises(PlanTaskError) as raised:
        plan_release({"manifest": manifest}, "/", no_cluster)
    assert "sideways" in raised.value.message and "s3cret" not in raised.value.message


def test_two_canaries_in_one_manifest_are_refused():
    text = SEED.read_text() + "\n---\n" + SEED.read_text()
    with pytest.raises(PlanTaskError, match="holds 2 Canary documents"):
        plan_release({"manifest": text}, "/", no_cluster)


def test_the_route_to_adopt_must_suit_the_provider():
    manifest = yaml.safe_load(SEED.read_text())
    with pytest.raises(PlanTaskError, match="canary_http_route names a Gateway API HTTPRoute, but the provider is istio"):
        plan_release({"manifest": manifest, "http_route": {"adopt": "web"}}, "/", no_cluster)
    manifest["spec"]["provider"] = "gatewayapi:v1"
    del manifest["spec"]["service"]["gateways"]
    manifest["spec"]["service"]["gatewayRefs"] = [{"name": "public", "namespace": "istio-system"}]
    with pytest.raises(PlanTaskError, match="canary_virtual_service names a VirtualService"):
        plan_release({"manifest": manifest, "virtual_service": {"adopt": "web"}}, "/", no_cluster)
    assert plan_release({"manifest": manifest, "http_route": {"adopt": "web"}}, "/", no_cluster)["plan"]["provider"] == "gatewayapi"


def test_alert_provider_files_are_read_where_the_manifest_is_found(tmp_path):
    (tmp_path / "canary.yaml").write_text(SEED.read_text())
    (tmp_path / "slack.yaml").write_text("kind: AlertProvider\nmetadata: {name: on-call}\n")
    inline = {"kind": "AlertProvider", "metadata": {"name": "chat"}}
    planned = plan_release({"manifest": "canary.yaml", "alert_providers": ["slack.yaml", inline]}, str(tmp_path), no_cluster)
    assert planned["alert_providers"] == ["kind: AlertProvider\nmetadata: {name: on-call}\n", inline]
    with pytest.raises(PlanTaskError, match="canary_alert_providers: no file missing.yaml next to the playbook"):
        plan_release({"manifest": "canary.yaml", "alert_providers": ["missing.yaml"]}, str(tmp_path), no_cluster)
