"""Credentials in URLs stay out of module results, messages and -vvv output."""

from __future__ import annotations

import json

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.redaction import redact_url, url_secrets
from tests.support.modules import run_module


@pytest.mark.parametrize("url,expected", [
    ("http://alice:S3cretPw@hooks:8080/x?token=QueryTok&a=1", {"S3cretPw", "QueryTok"}),
    ("https://hooks/x?short=1", set()),
    ("http://hooks:8080/", set()),
    (None, set()),
])
def test_url_secrets(url, expected):
    assert url_secrets(url) == expected


def test_redact_url_hides_password_and_query_values():
    assert redact_url("http://alice:pw@hooks:8080/x?token=abc") == "http://***@hooks:8080/x?token=***"


def test_webhook_url_credentials_never_reach_the_result():
    result = run_module("canary_webhook", {
        "url": "http://alice:S3cretPw@127.0.0.1:9/hook?token=QueryTok123", "type": "rollout",
        "name": "web", "namespace": "prod", "retries": 0, "timeout": 1})
    assert result["failed"]
    text = json.dumps(result)
    assert "S3cretPw" not in text and "QueryTok123" not in text
    assert "127.0.0.1:9" in result["msg"]


def test_prometheus_url_credentials_never_reach_the_result():
    result = run_module("prometheus_gate", {
        "prometheus_url": "http://bob:PromPw77@127.0.0.1:9", "prometheus_timeout": 1,
        "namespace": "prod", "target": "web", "metrics": [{"name": "request-success-rate"}]})
    text = json.dumps(result)
    assert "PromPw77" not in text
    assert "127.0.0.1:9" in text


@pytest.mark.parametrize("metric,expected", [
    ({"name": "m", "template": {"spec": {"provider": "prom", "query": "up"}}}, "spec.provider must be a mapping"),
    ({"name": "m", "templateRef": "x"}, "metadata must be a mapping"),
])
def test_malformed_metric_templates_fail_readably(metric, expected):
    result = run_module("prometheus_gate", {
        "prometheus_url": "http://127.0.0.1:9", "namespace": "prod", "target": "web", "metrics": [metric],
        "metric_templates": [{"metadata": "x"}]})
    assert result["failed"]
    assert expected in result["msg"]
    assert "Traceback" not in result.get("_stderr", "")


def test_time_out_of_range_fails_readably():
    result = run_module("prometheus_gate", {
        "prometheus_url": "http://127.0.0.1:9", "namespace": "prod", "target": "web", "mode": "range",
        "start": 1e30, "metrics": [{"name": "request-success-rate"}]})
    assert result["failed"]
    assert "outside 1970-01-01 .. 9999-12-31" in result["msg"]
    assert "Traceback" not in result.get("_stderr", "")
