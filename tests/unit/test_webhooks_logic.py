"""Pure webhook logic: option validation, durations, payloads, status rules, body bounding and redaction."""

from __future__ import annotations

import json

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.redaction import redact_url
from ansible_collections.progressive.delivery.plugins.module_utils.webhooks.body_summary import summarize_body
from ansible_collections.progressive.delivery.plugins.module_utils.webhooks.spec import (
    GATE_TYPES,
    WEBHOOK_TYPES,
    WebhookInputError,
    build_payload,
    describe_request,
    normalize_metadata,
    parse_duration,
    spec_from_params,
    validate_url,
)
from ansible_collections.progressive.delivery.plugins.module_utils.webhooks.transport import is_passing_status


def params(**overrides):
    base = {"url": "http://hooks.test/", "name": "podinfo", "namespace": "test"}
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (10, 10.0),
        (2.5, 2.5),
        ("10", 10.0),
        ("30s", 30.0),
        ("1m", 60.0),
        ("1m30s", 90.0),
        ("1h2m3s", 3723.0),
        ("500ms", 0.5),
        ("1.5s", 1.5),
        ("250us", 0.00025),
        ("3m0.5s", 180.5),
    ],
)
def test_durations_accept_seconds_and_go_strings(value, seconds):
    assert parse_duration(value, "timeout") == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["", "abc", "10x", "1m30", "s", "1.2.3s", "m5", True, None, [1]])
def test_unreadable_durations_name_the_option(value):
    with pytest.raises(WebhookInputError, match="gate_poll"):
        parse_duration(value, "gate_poll")


@pytest.mark.parametrize("value", [-1, "-5s", -0.1])
def test_negative_durations_are_refused(value):
    with pytest.raises(WebhookInputError, match="must not be negative"):
        parse_duration(value, "timeout")


def test_zero_is_only_allowed_where_it_means_forever():
    assert parse_duration(0, "gate_timeout", allow_zero=True) == 0.0
    assert parse_duration("0", "gate_timeout", allow_zero=True) == 0.0
    with pytest.raises(WebhookInputError, match="greater than zero"):
        parse_duration(0, "timeout")


@pytest.mark.parametrize("url", ["ftp://hooks.test/", "hooks.test/gate", "file:///etc/passwd", "", "http:///nohost", "http://h:99999/"])
def test_only_absolute_http_urls_pass(url):
    with pytest.raises(WebhookInputError, match="url"):
        validate_url(url)


def test_url_errors_do_not_echo_credentials():
    with pytest.raises(WebhookInputError) as info:
        validate_url("gopher://admin:hunter2@hooks.test/")
    assert "hunter2" not in str(info.value)


def test_redaction_hides_userinfo_and_query_values():
    shown = redact_url("https://admin:hunter2@hooks.test:8443/path?token=abc&x=1#frag")
    assert shown == "https://***@hooks.test:8443/path?token=***&x=***"
    assert redact_url("http://hooks.test/gate/check") == "http://hooks.test/gate/check"


def test_metadata_becomes_a_map_of_strings():
    assert normalize_metadata({"cmd": "hey", "count": 10, "ratio": 0.5, "dry": True, "none": None}) == {
        "cmd": "hey",
        "count": "10",
        "ratio": "0.5",
        "dry": "true",
        "none": "",
    }


def test_nested_metadata_is_refused_with_the_key():
    with pytest.raises(WebhookInputError, match="metadata.labels"):
        normalize_metadata({"labels": {"a": "b"}})


def test_payload_has_flaggers_field_names():
    payload = build_payload("podinfo", "test", "Progressing", "abc123", {"type": "cmd", "cmd": "hey"}, "rollout")
    assert payload == {
        "name": "podinfo",
        "namespace": "test",
        "phase": "Progressing",
        "checksum": "abc123",
        "metadata": {"type": "cmd", "cmd": "hey"},
    }
    assert json.loads(json.dumps(payload)) == payload


def test_event_payload_gets_a_millisecond_timestamp_unless_given():
    stamped = build_payload("p", "n", "Succeeded", "", {"eventMessage": "done"}, "event", now_ms=1700000000123)
    assert stamped["metadata"] == {"eventMessage": "done", "timestamp": "1700000000123"}
    kept = build_payload("p", "n", "Succeeded", "", {"timestamp": "42"}, "event", now_ms=1)
    assert kept["metadata"]["timestamp"] == "42"
    other = build_payload("p", "n", "Progressing", "", {}, "rollout", now_ms=1)
    assert "timestamp" not in other["metadata"]


@pytest.mark.parametrize(("status", "passes"), [(199, False), (200, True), (201, True), (202, True), (203, False), (204, False),
                                                (302, False), (403, False), (500, False), (None, False)])
def test_only_200_to_202_pass(status, passes):
    assert is_passing_status(status) is passes


def test_html_bodies_are_reduced_to_their_text():
    page = (b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title><style>body{color:red}</style>"
            b"<script>var x = 1;</script></head><body><h1>Upstream &amp; proxy failed</h1><p>nginx</p></body></html>")
    text, cut = summarize_body(page, "text/html; charset=utf-8", 1024, total_length=len(page))
    assert text == "HTML page '502 Bad Gateway': Upstream & proxy failed nginx"
    assert not cut
    assert "<" not in text and "color" not in text and "var x" not in text


def test_html_is_recognised_without_a_content_type():
    page = b"<html><body><p>denied</p></body></html>"
    text, _cut = summarize_body(page, None, 1024, total_length=len(page))
    assert text == "HTML page: denied"


def test_huge_bodies_are_bounded_and_say_how_big_they_were():
    text, cut = summarize_body(b"x" * 50000, "text/plain", 200, total_length=50000)
    assert cut
    assert len(text) <= 200
    assert text.endswith("[cut, 50000 bytes in all]")


def test_a_body_of_unknown_size_that_was_not_read_to_the_end_says_so():
    text, cut = summarize_body(b"y" * 300, "text/plain", 100, total_length=None)
    assert cut
    assert text.endswith("[cut, more than 300 bytes]")
    assert len(text) <= 100


def test_a_partially_read_body_is_marked_cut_even_when_short_after_reduction():
    text, cut = summarize_body(b"short", "text/plain", 200, total_length=10_000_000)
    assert cut
    assert "10000000 bytes" in text


def test_binary_and_control_characters_do_not_reach_the_log():
    text, _cut = summarize_body(b"\x00\x01\x02PNG", "application/octet-stream", 100, total_length=6)
    assert text == "<binary body, 6 bytes in all>"
    text, _cut = summarize_body(b"bad\x1b[31m red\x07", "text/plain", 100, total_length=13)
    assert text == "bad[31m red"


def test_json_bodies_are_kept_as_sent():
    body = b'{"error": "smoke test failed", "failed": 3}'
    text, cut = summarize_body(body, "application/json", 1024, total_length=len(body))
    assert text == '{"error": "smoke test failed", "failed": 3}'
    assert not cut


def test_spec_defaults_follow_flagger():
    spec = spec_from_params(params())
    assert spec.hook_type == "rollout"
    assert spec.phase == "Progressing"
    assert spec.timeout == 10.0
    assert spec.retries == 2
    assert spec.verify is True
    assert spec.gate_timeout == 0.0
    assert spec.gate_poll == 5.0
    assert spec.on_gate_timeout == "fail"
    assert not spec.is_gate


def test_spec_uses_the_ca_bundle_unless_verification_is_off():
    assert spec_from_params(params(ca_cert="/tmp/ca.pem")).verify == "/tmp/ca.pem"
    assert spec_from_params(params(ca_cert="/tmp/ca.pem", validate_certs=False)).verify is False


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"type": "pre-deploy"}, "type must be one of"),
        ({"phase": "Running"}, "phase must be one of"),
        ({"timeout": "-3s"}, "timeout must not be negative"),
        ({"timeout": 0}, "timeout must be greater than zero"),
        ({"gate_timeout": -1}, "gate_timeout must not be negative"),
        ({"gate_poll": "0s"}, "gate_poll must be greater than zero"),
        ({"retries": -1}, "retries must be zero or more"),
        ({"url": "tcp://hooks.test"}, "url must start with http"),
        ({"name": ""}, "name is required"),
        ({"type": "rollout", "wait": True}, "wait applies to gates"),
        ({"max_body": 10}, "max_body must be at least"),
        ({"headers": {"X-A": "a\r\nInjected: 1"}}, "line breaks"),
    ],
)
def test_bad_input_is_refused_before_any_request(overrides, needle):
    with pytest.raises(WebhookInputError, match=needle):
        spec_from_params(params(**overrides))


def test_gate_types_are_exactly_the_question_hooks():
    assert set(GATE_TYPES) == {"confirm-rollout", "confirm-traffic-increase", "confirm-promotion", "rollback"}
    assert set(WEBHOOK_TYPES) - set(GATE_TYPES) == {"pre-rollout", "rollout", "post-rollout", "event"}
    assert len(WEBHOOK_TYPES) == 8


def test_the_request_description_hides_header_values():
    spec = spec_from_params(params(headers={"Authorization": "Bearer sekrit"}, metadata={"cmd": "hey"}))
    text = describe_request(spec, build_payload("podinfo", "test", "Progressing", "", spec.metadata, "rollout"))
    assert "Authorization: <hidden>" in text
    assert "sekrit" not in text
    assert '"cmd": "hey"' in text


@pytest.mark.parametrize("overrides", [{"type": "rollout"}, {"type": "confirm-rollout"}, {"type": "rollback", "wait": True}])
def test_rollback_url_needs_a_waiting_confirm_gate(overrides):
    with pytest.raises(WebhookInputError, match="rollback_url"):
        spec_from_params(params(rollback_url="http://hooks.test/rollback/check", **overrides))


def test_rollback_url_is_validated_like_url():
    with pytest.raises(WebhookInputError, match="url must start with http"):
        spec_from_params(params(type="confirm-promotion", wait=True, rollback_url="hooks.test/rollback/check"))
