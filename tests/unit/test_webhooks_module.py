"""The canary_webhook module run as Ansible runs it: results, failures, check mode, diff and secrets."""

from __future__ import annotations

import json
import textwrap

import pytest
import yaml
from werkzeug.wrappers import Response

from ansible_collections.progressive.delivery.plugins.modules import canary_webhook
from tests.support.modules import run_module, run_playbook

SECRET = "s3cr3t-Header-Value-7f1c"


def echo_headers(request):
    # a careless receiver that reflects what it got; the secret must still not reach the result
    return Response(json.dumps({"seen": dict(request.headers)}), status=500, content_type="application/json")


def base_args(url, **overrides):
    args = {"url": url, "name": "podinfo", "namespace": "test"}
    args.update(overrides)
    return args


def test_passing_hook_reports_its_answer(httpserver):
    httpserver.expect_request("/", method="POST").respond_with_data("started", status=202)
    result = run_module("canary_webhook", base_args(httpserver.url_for("/"), type="rollout", metadata={"type": "cmd", "cmd": "hey"}))
    assert result.get("failed") is not True, result
    assert result["passed"] is True
    assert result["status"] == 202
    assert result["body"] == "started"
    assert result["changed"] is True
    assert result["attempts"] == 1
    assert result["outcome"] == "passed"


def test_failing_hook_fails_the_task_with_a_readable_reason(httpserver):
    httpserver.expect_request("/").respond_with_data("3 of 10 smoke requests failed", status=500)
    result = run_module("canary_webhook", base_args(httpserver.url_for("/"), type="pre-rollout"))
    assert result["failed"] is True
    assert "pre-rollout webhook for canary podinfo.test" in result["msg"]
    assert "HTTP 500" in result["msg"]
    assert "3 of 10 smoke requests failed" in result["msg"]
    assert result["passed"] is False
    assert "Traceback" not in result["_stderr"]
    assert "exception" not in result


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"timeout": "-1s"}, "timeout must not be negative"),
        ({"gate_timeout": -5}, "gate_timeout must not be negative"),
        ({"type": "pre-deploy"}, "value of type must be one of"),
        ({"url": "ftp://hooks.test/"}, "url must start with http"),
        ({"timeout": "soon"}, "cannot read 'soon' as a duration"),
    ],
)
def test_bad_input_fails_before_any_request(httpserver, overrides, needle):
    httpserver.expect_request("/").respond_with_data("ok")
    args = base_args(httpserver.url_for("/"))
    args.update(overrides)
    result = run_module("canary_webhook", args)
    assert result["failed"] is True
    assert needle in result["msg"]
    assert httpserver.log == []
    if "value of type" not in needle:  # Ansible refuses a bad choice before the module runs
        # Every key RETURN documents as always returned is there, saying nothing was sent.
        always = [key for key, doc in yaml.safe_load(canary_webhook.RETURN).items() if doc["returned"] == "always"]
        assert len(always) > 15 and [key for key in always if key not in result] == []
        assert (result["passed"], result["outcome"], result["attempts"], result["error_kind"]) == (False, "error", 0, "request")


def test_check_mode_skips_side_effects_and_shows_the_request_in_diff(httpserver):
    httpserver.expect_request("/").respond_with_data("ok")
    result = run_module(
        "canary_webhook",
        base_args(httpserver.url_for("/"), type="post-rollout", phase="Succeeded", headers={"X-Token": SECRET}, metadata={"note": "done"}),
        check_mode=True,
        diff=True,
    )
    assert result["skipped"] is True
    assert result["changed"] is False
    assert httpserver.log == []
    after = result["diff"]["after"]
    assert "POST " + httpserver.url_for("/") in after
    assert '"phase": "Succeeded"' in after
    assert "X-Token: <hidden>" in after
    assert SECRET not in json.dumps(result)


def test_header_secrets_never_appear_in_the_result(httpserver):
    httpserver.expect_request("/").respond_with_handler(echo_headers)
    result = run_module("canary_webhook", base_args(httpserver.url_for("/"), headers={"X-Api-Key": SECRET}))
    request, _response = httpserver.log[0]
    assert request.headers["X-Api-Key"] == SECRET
    assert result["failed"] is True
    assert "X-Api-Key" in result["body"]
    assert SECRET not in json.dumps(result)


def test_header_secrets_never_appear_in_verbose_playbook_output(httpserver, tmp_path):
    httpserver.expect_request("/").respond_with_handler(echo_headers)
    playbook = tmp_path / "hook.yml"
    playbook.write_text(textwrap.dedent(f"""\
        - name: Call a webhook with a secret header
          hosts: localhost
          gather_facts: false
          tasks:
            - name: Send the hook
              progressive.delivery.canary_webhook:
                url: {httpserver.url_for("/")}
                type: rollout
                name: podinfo
                namespace: test
                retries: 0
                headers:
                  X-Api-Key: "{{{{ hook_secret }}}}"
              register: hook
              ignore_errors: true

            - name: Show what was registered
              ansible.builtin.debug:
                var: hook
        """))
    completed = run_playbook(playbook, extra_vars={"hook_secret": SECRET}, verbosity=3)
    output = completed.stdout + completed.stderr
    assert len(httpserver.log) == 1, output
    assert httpserver.log[0][0].headers["X-Api-Key"] == SECRET
    assert "Send the hook" in output
    assert "HTTP 500" in output
    assert SECRET not in output
