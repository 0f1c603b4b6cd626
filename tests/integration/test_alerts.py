"""Flagger's alerts from real releases on the lab: a promotion and a rollback reach a local receiver in each provider's
format, through providers given with the Canary, read from the cluster, and addressed by a secretRef Secret."""

from __future__ import annotations

import base64
import json

import pytest
import yaml

from ansible_collections.progressive.delivery.plugins.module_utils.kube.client import client_from_auth, resolve_auth
from lab.testing import wait_for
from tests.support.releases import Release, short_manifest

pytestmark = pytest.mark.slow

ERROR_RATE = "lab.progressive.delivery/error-rate"
NEW_REVISION = "New revision detected, progressing canary analysis."
PROMOTED = "Canary analysis completed successfully, promotion finished."
# The fast mode rolls back at the first hard breach and the alert gives that reason; when the canary's metrics are
# late (a loaded machine), the failed checks reach the threshold first and the alert says so, as Flagger's does.
ROLLED_BACK = "Canary failed, rolled back: "
THRESHOLD_REACHED = "Failed checks threshold reached 2"
SLACK_PATH = "/services/T000/B000/secret-token-in-path"
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "alertproviders.flagger.app"},
    "spec": {"group": "flagger.app", "scope": "Namespaced",
             "names": {"plural": "alertproviders", "singular": "alertprovider", "kind": "AlertProvider",
                       "listKind": "AlertProviderList"},
             "versions": [{"name": "v1beta1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
}


@pytest.fixture(scope="module")
def alert_provider_crd(lab, lab_api_client):
    """Flagger's AlertProvider kind, as the Flagger chart installs it (schema left open: the test needs the kind)."""
    from kubernetes import client  # pylint: disable=import-outside-toplevel
    from kubernetes.client.exceptions import ApiException  # pylint: disable=import-outside-toplevel

    try:
        client.ApiextensionsV1Api(lab_api_client).create_custom_resource_definition(CRD)
    except ApiException as error:
        if error.status != 409:
            raise
    kube = client_from_auth(resolve_auth({"kubeconfig": lab.kubeconfig}, environ={}))
    wait_for(lambda: "v1beta1" in kube.served_versions("flagger.app"), timeout=10, interval=0.1,
             message="the AlertProvider CRD served")


def provider(name: str, kind: str, **spec) -> dict:
    return {"apiVersion": "flagger.app/v1beta1", "kind": "AlertProvider", "metadata": {"name": name},
            "spec": dict(spec, type=kind)}


def received(httpserver) -> dict[str, list[dict]]:
    bodies: dict[str, list[dict]] = {}
    for request, _response in httpserver.log:
        bodies.setdefault(request.path, []).append(json.loads(request.get_data()))
    return bodies


def slack_texts(bodies: list[dict]) -> list[tuple[str, str]]:
    """Each message's text (a rollback's up to its reason) and color."""
    texts = [b["attachments"][0]["text"] for b in bodies]
    return [(ROLLED_BACK if text.startswith(ROLLED_BACK) else text, b["attachments"][0]["color"])
            for text, b in zip(texts, bodies)]


def test_a_promotion_and_a_rollback_alert_each_provider_in_its_format(lab, lab_api_client, namespace, tmp_path,
                                                                       alert_provider_crd, httpserver):
    from kubernetes import client  # pylint: disable=import-outside-toplevel

    base = httpserver.url_for("").rstrip("/")
    for path in (SLACK_PATH, "/discord/slack", "/rocket", "/teams", "/gchat", "/generic"):
        httpserver.expect_request(path, method="POST").respond_with_data("ok")
    # Slack's address, token in its path, only in a Secret; the Teams provider only in the cluster.
    client.CoreV1Api(lab_api_client).create_namespaced_secret(namespace, {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "slack-url"},
        "data": {"address": base64.b64encode((base + SLACK_PATH).encode()).decode()}})
    client.CustomObjectsApi(lab_api_client).create_namespaced_custom_object(
        "flagger.app", "v1beta1", namespace, "alertproviders", provider("teams", "msteams", address=base + "/teams"))
    providers_file = tmp_path / "alert-providers.yaml"
    providers_file.write_text(yaml.safe_dump_all([
        provider("on-call", "slack", channel="on-call", secretRef={"name": "slack-url"}),
        provider("chat", "gchat", address=base + "/gchat")]))
    given = [str(providers_file), provider("qa", "discord", address=base + "/discord"),
             provider("ops", "rocket", address=base + "/rocket"), provider("hook", "generic", address=base + "/generic")]
    alerts = [{"name": "on-call", "severity": "error", "providerRef": {"name": "on-call"}},
              {"name": "qa", "severity": "warn", "providerRef": {"name": "qa", "namespace": namespace}},
              {"name": "dev", "providerRef": {"name": "teams"}},
              {"name": "ops", "severity": "info", "providerRef": {"name": "ops"}},
              {"name": "chat", "providerRef": {"name": "chat"}},
              {"name": "hook", "providerRef": {"name": "hook"}},
              # A provider that exists nowhere: its rollback alert is a warning, and the others are still sent.
              {"name": "ghost", "severity": "error", "providerRef": {"name": "missing"}}]
    release = Release(lab, namespace, tmp_path, manifest=short_manifest(namespace, alerts=alerts))
    options = {"canary_alert_providers": given}
    assert release.run(**options).returncode == 0
    assert httpserver.log == []  # initializing is not an alert

    release.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.1")
    result = release.run(**options)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "was not sent" not in result.stdout + (result.stderr or ""), result.stdout[-4000:]
    promoted = received(httpserver)
    # error and warn alerts hear nothing of a good release; info alerts hear its start (with facts) and its end.
    assert SLACK_PATH not in promoted and "/discord/slack" not in promoted
    assert slack_texts(promoted["/rocket"]) == [(NEW_REVISION, "#0076D7"), (PROMOTED, "#0076D7")]
    assert promoted["/rocket"][0]["attachments"][0]["fields"] == [
        {"title": "Target", "value": "Deployment/app.%s" % namespace, "short": False},
        {"title": "Failed checks threshold", "value": "2", "short": False},
        {"title": "Progress deadline", "value": "60s", "short": False},
        {"title": "Traffic routing", "value": "Weight steps: 30,60 max: 60", "short": False}]
    teams = promoted["/teams"]
    assert [(t["@type"], t["themeColor"], t["sections"][0]["activityTitle"]) for t in teams] == [
        ("MessageCard", "0076D7", NEW_REVISION), ("MessageCard", "0076D7", PROMOTED)]
    assert teams[0]["summary"] == "app.%s" % namespace and len(teams[0]["sections"][0]["facts"]) == 4
    assert [c["cards"][0]["header"]["subtitle"] for c in promoted["/gchat"]] == ["app.%s" % namespace] * 2
    assert [(g["phase"], g["metadata"]["eventMessage"], g["metadata"]["severity"]) for g in promoted["/generic"]] == [
        ("Progressing", NEW_REVISION, "info"), ("Succeeded", PROMOTED, "info")]
    assert promoted["/generic"][0]["name"] == "app" and promoted["/generic"][0]["namespace"] == namespace

    httpserver.clear_log()
    release.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.2", annotations={ERROR_RATE: "0.5"})
    result = release.run(**options)
    assert result.returncode != 0, result.stdout[-4000:]
    rolled_back = received(httpserver)
    on_call = rolled_back[SLACK_PATH]
    failure = THRESHOLD_REACHED if int(release.state()["failedChecks"]) >= 2 else ROLLED_BACK
    assert slack_texts(on_call) == [(failure, "danger")]
    if failure == ROLLED_BACK:
        assert "request-success-rate" in on_call[0]["attachments"][0]["text"]
    assert on_call[0]["channel"] == "on-call" and on_call[0]["username"] == "flagger"
    assert on_call[0]["attachments"][0]["author_name"] == "app.%s" % namespace
    assert slack_texts(rolled_back["/discord/slack"]) == [(failure, "danger")]
    assert slack_texts(rolled_back["/rocket"]) == [(NEW_REVISION, "#0076D7"), (failure, "#FF0000")]
    assert [t["themeColor"] for t in rolled_back["/teams"]] == ["0076D7", "FF0000"]
    assert [g["metadata"]["eventType"] for g in rolled_back["/generic"]] == ["Normal", "Warning"]
    assert len(rolled_back["/gchat"]) == 2
    output = result.stdout + (result.stderr or "")
    assert "alert 'ghost'" in output and "AlertProvider %s/missing" % namespace in output, output[-4000:]
    # The rollback is the release's outcome, not the failed delivery; the Secret's address never shows.
    assert release.state()["phase"] == "Failed"
    assert "secret-token-in-path" not in output
