"""Secrets in webhook metadata and manifests: what is hidden, what stays readable."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.progressive.delivery.plugins.filter.canary_plan import canary_plan
from ansible_collections.progressive.delivery.plugins.filter.redaction import redact_url_filter
from ansible_collections.progressive.delivery.plugins.module_utils.redaction import (
    manifest_secrets,
    mask,
    secret_strings,
)
from ansible_collections.progressive.delivery.plugins.module_utils.webhooks.runner import run_webhook
from ansible_collections.progressive.delivery.plugins.module_utils.webhooks.spec import spec_from_params
from tests.support.modules import run_module
from tests.support.releases import short_manifest

TOKEN = "tok-8b1d0c5e7f2a4a96b3c1"


def test_secret_strings_finds_nested_values_and_the_token_of_a_header_line():
    found = secret_strings({"type": "cmd", "count": 2, "headers": "Authorization: Bearer " + TOKEN,
                            "nested": {"apiKey": "abcdefgh"}, "list": ["0123456789"], "flag": True})
    assert found == {"Authorization: Bearer " + TOKEN, TOKEN, "abcdefgh", "0123456789"}


def test_mask_hides_the_longest_secret_whole():
    assert mask("a Bearer %s b" % TOKEN, {TOKEN, "Bearer " + TOKEN}) == "a ******** b"
    assert mask("nothing here", set()) == "nothing here"


def test_manifest_secrets_are_webhook_metadata_and_url_credentials():
    manifest = short_manifest("ns", webhooks=[
        {"name": "load", "type": "rollout", "url": "http://bot:UrlPassw0rd@hooks/", "metadata": {"token": TOKEN}}])
    assert manifest_secrets(manifest) == {TOKEN, "UrlPassw0rd"}
    assert manifest_secrets("not a manifest") == set()
    manifest["spec"]["metricsServer"] = "http://prom:ServerPw99@prometheus:9090"
    template = {"kind": "MetricTemplate", "spec": {"provider": {"address": "http://u:TemplatePw1@prom/"}}}
    assert manifest_secrets(manifest, [template]) == {TOKEN, "UrlPassw0rd", "ServerPw99", "TemplatePw1"}


def test_a_rejected_manifest_never_quotes_its_secrets():
    manifest = short_manifest("ns", webhooks=[
        {"name": "load", "type": "rollout", "url": "ftp://bot:UrlPassw0rd@hooks/",
         "metadata": {"headers": "Authorization: Bearer " + TOKEN, "nested": {"key": TOKEN}}}])
    with pytest.raises(AnsibleFilterError) as error:
        canary_plan(manifest)
    message = str(error.value)
    assert "webhooks[0].url" in message and "webhooks[0].metadata.nested" in message
    assert TOKEN not in message and "UrlPassw0rd" not in message
    manifest = short_manifest("ns", metrics=[{"name": "errors", "templateRef": {"name": "errors"},
                                              "thresholdRange": {"max": 1}}])
    template = {"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
                "metadata": {"name": "errors", "namespace": "ns"},
                "spec": {"provider": {"type": "prometheus", "address": "ftp://u:TemplatePw1@prom/"}, "query": "up"}}
    with pytest.raises(AnsibleFilterError) as error:
        canary_plan(manifest, [template])
    assert "spec.provider.address" in str(error.value) and "TemplatePw1" not in str(error.value)


def test_invalid_yaml_says_where_without_quoting_the_line():
    with pytest.raises(AnsibleFilterError) as error:
        canary_plan("kind: Canary\n  headers: 'Bearer %s'\n" % TOKEN)
    assert "line 2" in str(error.value) and TOKEN not in str(error.value)


def test_redact_url_filter():
    assert redact_url_filter("https://u:p@hooks/x?token=abcdef") == "https://***@hooks/x?token=***"
    with pytest.raises(AnsibleFilterError):
        redact_url_filter(None)


def test_webhook_metadata_is_hidden_even_when_the_receiver_echoes_it(httpserver):
    # A receiver that answers with what it got, as some load testers do on failure.
    httpserver.expect_request("/hook").respond_with_handler(
        lambda request: __import__("werkzeug").Response(request.get_data(), status=500))
    result = run_module("canary_webhook", {
        "url": httpserver.url_for("/hook"), "type": "rollout", "name": "web", "namespace": "prod", "retries": 0,
        "metadata": {"type": "cmd", "cmd": "hey -z 1m http://web-canary.prod/", "count": 2,
                     "namespace": "prod", "headers": "Authorization: Bearer " + TOKEN}}, diff=True)
    assert result["failed"] and result["outcome"] == "failed" and result["status"] == 500
    text = json.dumps(result)
    assert TOKEN not in text
    assert result["invocation"]["module_args"]["metadata"]["headers"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    # Values too short to be credentials, and the canary's own names, stay readable.
    assert sorted(result["metadata_keys"]) == ["cmd", "count", "headers", "namespace", "type"]
    assert result["canary"] == "web.prod" and result["attempts"] == 1
    assert result["invocation"]["module_args"]["metadata"]["type"] == "cmd"


def test_the_analysis_never_gets_an_echoed_secret_in_a_webhook_message(httpserver):
    # The analysis calls run_webhook directly and puts its message into the report, the state and the Events.
    httpserver.expect_request("/hook").respond_with_handler(
        lambda request: __import__("werkzeug").Response(request.get_data(), status=500))
    run = run_webhook(spec_from_params({
        "url": httpserver.url_for("/hook"), "type": "event", "name": "web", "namespace": "prod", "retries": 0,
        "headers": {"X-Api-Key": "hdr-" + TOKEN},
        "metadata": {"token": TOKEN, "eventMessage": "Promotion completed! web.prod", "eventType": "Normal"}}))
    assert run.failed
    text = json.dumps(run.result) + run.msg + run.diff_after
    assert TOKEN not in text and "HTTP 500" in run.msg
    # What the role itself sends stays readable.
    assert "Promotion completed! web.prod" in run.msg and run.result["canary"] == "web.prod"
