# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Flagger's alerts: the severity rule, which phase change alerts, each provider's payload on a real HTTP server,
providers and their Secrets read from a Kubernetes API, and failures that stay warnings without secrets."""

from __future__ import annotations

import base64
import copy
import json

import pytest
from pytest_httpserver import HTTPServer

from ansible_collections.progressive.delivery.plugins.module_utils.alerts import events as ev
from ansible_collections.progressive.delivery.plugins.module_utils.alerts.delivery import AlertOptions, send, where
from ansible_collections.progressive.delivery.plugins.module_utils.alerts.severity import should_alert
from ansible_collections.progressive.delivery.plugins.module_utils.kube.client import client_from_auth, resolve_auth
from ansible_collections.progressive.delivery.plugins.module_utils.plan.manifest import CanarySpecError, build_plan
from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st

FIELDS = [{"name": "Target", "value": "Deployment/podinfo.prod"}, {"name": "Failed checks threshold", "value": "2"}]
NOW = 1700000000.0


def provider(name, kind, address, **spec):
    return {"apiVersion": "flagger.app/v1beta1", "kind": "AlertProvider", "metadata": {"name": name, "namespace": "prod"},
            "spec": dict(spec, type=kind, address=address)}


def alert(name, provider_name, severity="info"):
    return {"name": name, "severity": severity, "provider": {"name": provider_name, "namespace": "prod"}}


def options(alerts, providers, **extra):
    params = {"alert_providers": providers, "alert_timeout": 2.0}
    return AlertOptions.from_params(params, dict({"alerts": alerts, "fields": FIELDS, "muted": [], "threshold": 2},
                                                 **extra))


def state(phase, **changes):
    result = st.CanaryState()
    result.phase = phase
    result.last_applied_spec = "abc123"
    for key, value in changes.items():
        setattr(result, key, value)
    return result


def posted(server: HTTPServer) -> dict[str, dict]:
    return {request.path: json.loads(request.get_data()) for request, _response in server.log}


# -- severity and events ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("alert_severity, event_severity, expected", [
    ("info", "info", True), ("info", "warn", True), ("info", "error", True),
    ("warn", "info", False), ("warn", "warn", True), ("warn", "error", True),
    ("error", "info", False), ("error", "warn", False), ("error", "error", True),
])
def test_severity_rule_is_flaggers(alert_severity, event_severity, expected):
    assert should_alert(alert_severity, event_severity) is expected


@pytest.mark.parametrize("before, after, message, severity", [
    (st.INITIALIZED, st.PROGRESSING, ev.NEW_REVISION, "info"),
    (st.SUCCEEDED, st.PROGRESSING, ev.NEW_REVISION, "info"),
    (st.PROGRESSING, st.WAITING, ev.WAITING_APPROVAL, "warn"),
    (st.PROGRESSING, st.WAITING_PROMOTION, ev.WAITING_PROMOTION_APPROVAL, "warn"),
    (st.FINALISING, st.SUCCEEDED, ev.PROMOTED, "info"),
    (st.PROGRESSING, st.FAILED, "Canary failed, rolled back: canary not ready", "error"),
])
def test_phase_changes_that_alert(before, after, message, severity):
    event = ev.transition_event(before, state(after, reason="canary not ready"), threshold=2)
    assert (event.message, event.severity, event.phase) == (message, severity, after)
    assert event.with_fields is (after == st.PROGRESSING)


@pytest.mark.parametrize("before, after", [
    (st.PROGRESSING, st.PROGRESSING),      # an analysis recorded
    (st.WAITING_PROMOTION, st.PROGRESSING),  # a restart keeps the release going: Flagger says nothing more
    (st.PROGRESSING, st.PROMOTING), (st.PROMOTING, st.FINALISING), (st.FAILED, st.INITIALIZED),
    (st.FAILED, st.FAILED),                # a repair after a rollback
])
def test_phase_changes_that_do_not_alert(before, after):
    assert ev.transition_event(before, state(after)) is None


def test_failed_checks_reaching_the_threshold_say_so():
    event = ev.transition_event(st.PROGRESSING, state(st.FAILED, failed_checks=3, reason="x"), threshold=3)
    assert event.message == "Failed checks threshold reached 3"


def test_muted_gates_send_no_waiting_alert():
    assert ev.transition_event(st.PROGRESSING, state(st.WAITING), muted=["confirm-rollout"]) is None
    assert ev.transition_event(st.PROGRESSING, state(st.WAITING_PROMOTION), muted=["confirm-promotion"]) is None
    assert ev.transition_event(st.PROGRESSING, state(st.WAITING_PROMOTION), muted=["confirm-rollout"]) is not None


# -- payloads, on a real receiver -------------------------------------------------------------------------------

def test_each_provider_type_receives_flaggers_payload(httpserver):
    base = httpserver.url_for("")
    for path in ("/slack", "/discord/slack", "/rocket", "/teams", "/gchat", "/generic"):
        httpserver.expect_request(path, method="POST", headers={"Content-Type": "application/json"}).respond_with_data("ok")
    providers = [provider("slack", "slack", base + "/slack", channel="on-call", username="bot"),
                 provider("discord", "discord", base + "/discord"),
                 provider("rocket", "rocket", base + "/rocket"),
                 provider("teams", "msteams", base + "/teams"),
                 provider("gchat", "googlechat", base + "/gchat"),
                 provider("generic", "generic", base + "/generic")]
    alerts = [alert(p["metadata"]["name"], p["metadata"]["name"]) for p in providers]
    warnings = send(options(alerts, providers), None, "podinfo", "prod", st.INITIALIZED, state(st.PROGRESSING),
                    clock=lambda: NOW)
    assert warnings == []
    bodies = posted(httpserver)
    slack_fields = [{"title": "Target", "value": "Deployment/podinfo.prod", "short": False},
                    {"title": "Failed checks threshold", "value": "2", "short": False}]
    assert bodies["/slack"] == {
        "channel": "on-call", "username": "bot", "icon_url": "", "icon_emoji": ":rocket:",
        "attachments": [{"color": "good", "author_name": "podinfo.prod", "text": ev.NEW_REVISION,
                         "mrkdwn_in": ["text"], "fields": slack_fields}]}
    # Discord takes Slack's format on its /slack path; channel and username default as in Flagger.
    assert bodies["/discord/slack"]["channel"] == "general" and bodies["/discord/slack"]["username"] == "flagger"
    assert bodies["/discord/slack"]["attachments"][0]["fields"] == slack_fields
    assert bodies["/rocket"]["attachments"][0]["color"] == "#0076D7"
    assert bodies["/teams"] == {
        "@type": "MessageCard", "@context": "http://schema.org/extensions", "themeColor": "0076D7",
        "summary": "podinfo.prod",
        "sections": [{"activityTitle": ev.NEW_REVISION, "activitySubtitle": "podinfo.prod",
                      "facts": [{"name": "Target", "value": "Deployment/podinfo.prod"},
                                {"name": "Failed checks threshold", "value": "2"}]}]}
    card = bodies["/gchat"]["cards"][0]
    assert card["header"] == {"title": "flagger", "subtitle": "podinfo.prod"}
    assert [s["widgets"][0]["textParagraph"]["text"] for s in card["sections"]] == [
        "<font color=#848484><strong>%s</strong></font>" % ev.NEW_REVISION,
        "Target<br><font color=#848484><strong>Deployment/podinfo.prod</strong></font>",
        "Failed checks threshold<br><font color=#848484><strong>2</strong></font>"]
    assert bodies["/generic"] == {
        "name": "podinfo", "namespace": "prod", "phase": "Progressing", "checksum": "abc123",
        "metadata": {"Target": "Deployment/podinfo.prod", "Failed checks threshold": "2", "eventMessage": ev.NEW_REVISION,
                     "eventType": "Normal", "severity": "info", "alert": "generic",
                     "timestamp": str(int(NOW * 1000))}}


def test_a_rollback_is_red_and_carries_no_facts(httpserver):
    base = httpserver.url_for("")
    for path in ("/slack", "/rocket", "/teams"):
        httpserver.expect_request(path, method="POST").respond_with_data("ok")
    providers = [provider("s", "slack", base + "/slack"), provider("r", "rocket", base + "/rocket"),
                 provider("t", "msteams", base + "/teams")]
    alerts = [alert("s", "s", "error"), alert("r", "r", "error"), alert("t", "t", "error")]
    assert send(options(alerts, providers), None, "podinfo", "prod", st.PROGRESSING,
                state(st.FAILED, failed_checks=2)) == []
    bodies = posted(httpserver)
    assert bodies["/slack"]["attachments"][0]["color"] == "danger"
    assert bodies["/slack"]["attachments"][0]["text"] == "Failed checks threshold reached 2"
    assert bodies["/slack"]["attachments"][0]["fields"] == []
    assert bodies["/rocket"]["attachments"][0]["color"] == "#FF0000"
    assert bodies["/teams"]["themeColor"] == "FF0000"


def test_only_alerts_whose_severity_asks_for_the_event_are_sent(httpserver):
    base = httpserver.url_for("")
    for path in ("/info", "/warn", "/error"):
        httpserver.expect_request(path, method="POST").respond_with_data("ok")
    providers = [provider(n, "generic", base + "/" + n) for n in ("info", "warn", "error")]
    alerts = [alert(n, n, n) for n in ("info", "warn", "error")]
    send(options(alerts, providers), None, "podinfo", "prod", st.PROGRESSING, state(st.WAITING_PROMOTION))
    assert sorted(posted(httpserver)) == ["/info", "/warn"]
    httpserver.clear_log()
    send(options(alerts, providers), None, "podinfo", "prod", st.FINALISING, state(st.SUCCEEDED))
    assert sorted(posted(httpserver)) == ["/info"]
    httpserver.clear_log()
    send(options(alerts, providers), None, "podinfo", "prod", st.WAITING, state(st.FAILED))
    assert sorted(posted(httpserver)) == ["/error", "/info", "/warn"]


def test_providers_given_as_yaml_text_are_read(httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    text = "---\napiVersion: flagger.app/v1beta1\nkind: AlertProvider\nmetadata:\n  name: hook\nspec:\n  type: generic\n" \
           "  address: %s\n" % httpserver.url_for("/hook")
    assert send(options([alert("a", "hook")], [text]), None, "podinfo", "prod", st.INITIALIZED, state(st.PROGRESSING)) == []
    assert list(posted(httpserver)) == ["/hook"]


def test_a_provider_proxy_carries_the_alert(httpserver):
    """The receiver is only reachable through the proxy, which is the test's server."""
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    providers = [provider("p", "slack", "http://alerts.invalid/hook", proxy=httpserver.url_for(""))]
    assert send(options([alert("a", "p")], providers), None, "podinfo", "prod", st.INITIALIZED, state(st.PROGRESSING)) == []
    (request, _response), = httpserver.log
    assert request.headers["Host"] == "alerts.invalid"
    assert json.loads(request.get_data())["attachments"][0]["text"] == ev.NEW_REVISION


# -- providers and Secrets from a Kubernetes API ----------------------------------------------------------------

@pytest.fixture
def api():
    server = HTTPServer()
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def kube_for(server: HTTPServer):
    return client_from_auth(resolve_auth({"host": server.url_for("").rstrip("/"), "api_key": "api-token",
                                          "validate_certs": False}, environ={}))


def secret(name, **values):
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "prod"},
            "data": {key: base64.b64encode(value.encode()).decode() for key, value in values.items()}}


def test_the_secret_gives_address_token_and_username(httpserver, api):
    httpserver.expect_request("/services/T0/B0/xoxb-secret-path", method="POST",
                              headers={"Authorization": "Bearer chat-token"}).respond_with_data("ok")
    api.expect_request("/api/v1/namespaces/prod/secrets/slack-url").respond_with_json(
        secret("slack-url", address=httpserver.url_for("/services/T0/B0/xoxb-secret-path"), token="chat-token",
               username="release-bot"))
    given = provider("on-call", "slack", "https://ignored.invalid/", secretRef={"name": "slack-url"})
    assert send(options([alert("on-call", "on-call")], [given]), kube_for(api), "podinfo", "prod", st.INITIALIZED,
                state(st.PROGRESSING)) == []
    assert posted(httpserver)["/services/T0/B0/xoxb-secret-path"]["username"] == "release-bot"


def test_a_provider_not_given_is_read_from_the_cluster(httpserver, api):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    api.expect_request("/apis/flagger.app").respond_with_json(
        {"kind": "APIGroup", "name": "flagger.app", "versions": [{"groupVersion": "flagger.app/v1beta1", "version": "v1beta1"}]})
    api.expect_request("/apis/flagger.app/v1beta1/namespaces/prod/alertproviders/in-cluster").respond_with_json(
        provider("in-cluster", "msteams", httpserver.url_for("/hook")))
    assert send(options([alert("a", "in-cluster")], []), kube_for(api), "podinfo", "prod", st.INITIALIZED,
                state(st.PROGRESSING)) == []
    assert posted(httpserver)["/hook"]["@type"] == "MessageCard"


def test_missing_providers_and_crds_are_warnings(api):
    api.expect_request("/apis/flagger.app").respond_with_data("not found", status=404)
    warnings = send(options([alert("on-call", "nowhere")], []), kube_for(api), "podinfo", "prod", st.PROGRESSING,
                    state(st.FAILED))
    assert len(warnings) == 1
    assert "alert 'on-call'" in warnings[0] and "AlertProvider prod/nowhere" in warnings[0]
    assert "canary_alert_providers" in warnings[0]


def test_a_secret_ref_without_a_cluster_is_a_warning():
    given = provider("p", "slack", "", secretRef={"name": "url"})
    warnings = send(options([alert("a", "p")], [given]), None, "podinfo", "prod", st.PROGRESSING, state(st.FAILED))
    assert len(warnings) == 1 and "Secret prod/url can only be read from the cluster" in warnings[0]


def test_a_secret_without_address_is_a_warning_naming_it(api):
    api.expect_request("/api/v1/namespaces/prod/secrets/empty").respond_with_json(secret("empty", token="x"))
    given = provider("p", "slack", "", secretRef={"name": "empty"})
    warnings = send(options([alert("a", "p")], [given]), kube_for(api), "podinfo", "prod", st.PROGRESSING,
                    state(st.FAILED))
    assert len(warnings) == 1 and "Secret prod/empty has no 'address' key" in warnings[0]


# -- failures stay warnings, secrets stay out -------------------------------------------------------------------

def test_a_refused_delivery_is_a_warning_without_the_address_path(httpserver):
    httpserver.expect_request("/services/T0/B0/s3cr3t-path", method="POST").respond_with_data("invalid_token", status=403)
    address = httpserver.url_for("/services/T0/B0/s3cr3t-path").replace("://", "://user:hunter22@")
    warnings = send(options([alert("on-call", "p")], [provider("p", "slack", address)]), None, "podinfo", "prod",
                    st.PROGRESSING, state(st.FAILED))
    assert len(warnings) == 1
    assert "HTTP 403 (invalid_token)" in warnings[0] and where(address) in warnings[0]
    assert "s3cr3t-path" not in warnings[0] and "hunter22" not in warnings[0]


def test_an_unreachable_receiver_and_an_unknown_type_are_warnings(httpserver):
    base = httpserver.url_for("")
    httpserver.expect_request("/ok", method="POST").respond_with_data("ok")
    dead = HTTPServer()
    dead.start()
    dead_url = dead.url_for("/token-in-path")
    dead.stop()
    providers = [provider("dead", "slack", dead_url), provider("odd", "pagerduty", base + "/x"),
                 provider("ok", "slack", base + "/ok")]
    alerts = [alert("dead", "dead"), alert("odd", "odd"), alert("ok", "ok")]
    warnings = send(options(alerts, providers), None, "podinfo", "prod", st.PROGRESSING, state(st.FAILED))
    assert len(warnings) == 2
    assert "alert 'dead'" in warnings[0] and "Connection refused" in warnings[0] and "token-in-path" not in warnings[0]
    assert "alert 'odd'" in warnings[1] and "'pagerduty' is not supported" in warnings[1]
    # The other providers still got theirs.
    assert list(posted(httpserver)) == ["/ok"]


def test_no_alerts_means_nothing_to_do():
    assert AlertOptions.from_params({"alert_providers": [provider("p", "slack", "http://x/")]}, {"alerts": []}) is None
    assert send(None, None, "podinfo", "prod", st.INITIALIZED, state(st.PROGRESSING)) == []


# -- the plan ---------------------------------------------------------------------------------------------------

CANARY = {
    "apiVersion": "flagger.app/v1beta1", "kind": "Canary", "metadata": {"name": "podinfo", "namespace": "prod"},
    "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
             "service": {"port": 9898},
             "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10,
                          "alerts": [{"name": "on-call", "severity": "error", "providerRef": {"name": "slack",
                                                                                             "namespace": "flagger"}},
                                     {"name": "dev", "providerRef": {"name": "teams"}}],
                          "webhooks": [{"name": "gate", "type": "confirm-promotion", "url": "http://gate/",
                                        "muteAlert": True}]}},
}


def test_the_plan_carries_the_alerts_their_facts_and_muted_gates():
    plan = build_plan(copy.deepcopy(CANARY))
    assert plan["alerting"] == {
        "alerts": [{"name": "on-call", "severity": "error", "provider": {"name": "slack", "namespace": "flagger"}},
                   {"name": "dev", "severity": "info", "provider": {"name": "teams", "namespace": "prod"}}],
        "fields": [{"name": "Target", "value": "Deployment/podinfo.prod"},
                   {"name": "Failed checks threshold", "value": "5"},
                   {"name": "Progress deadline", "value": "600s"},
                   {"name": "Traffic routing", "value": "Weight step: 10 max: 50"}],
        "muted": ["confirm-promotion"], "threshold": 5}
    assert not [note for note in plan["notes"] if "alert" in note.lower()], plan["notes"]


@pytest.mark.parametrize("change, problem", [
    ({"severity": "critical"}, "alerts[0].severity: must be one of info, warn, error"),
    ({"providerRef": None}, "alerts[0].providerRef: is required"),
    ({"name": None}, "alerts[0].name: is required"),
])
def test_bad_alerts_are_named(change, problem):
    canary = copy.deepcopy(CANARY)
    canary["spec"]["analysis"]["alerts"][0].update(change)
    with pytest.raises(CanarySpecError) as info:
        build_plan(canary)
    assert any(problem in error for error in info.value.errors), info.value.errors
