"""curl smoke tests from Flagger's docs, played through a recording send function, and the hooks server as a proxy."""

from __future__ import annotations

import json
import urllib.request

import pytest

from lab.curl import parse_curl, passed
from lab.hooks import HooksServer


def test_flaggers_token_smoke_test_is_a_post_that_must_succeed():
    run = parse_curl("curl -sd 'anon' http://podinfo-canary.test:9898/token | grep token")
    assert (run.host, run.path, run.method, run.needs_success) == ("podinfo-canary.test", "/token", "POST", True)


def test_method_headers_query_and_fail_are_read():
    run = parse_curl("curl -s -X PUT -H 'x-user: insider' --fail 'http://app.prod/api?x=1'")
    assert (run.host, run.path, run.method, run.headers, run.needs_success) == (
        "app.prod", "/api?x=1", "PUT", {"x-user": "insider"}, True)
    assert parse_curl("curl -sf http://app.prod/").needs_success
    assert not parse_curl("curl -s http://app.prod/").needs_success


@pytest.mark.parametrize("command", ["echo hi", "curl -s", "curl http://a/ | sort", "curl http://a/ | grep x | wc -l",
                                     "curl 'unbalanced", "curl ftp://a/"])
def test_other_commands_are_not_played(command):
    assert parse_curl(command) is None


@pytest.mark.parametrize("codes, failed, needs_success, expected", [
    ({"200": 1}, 0, True, True), ({"500": 1}, 1, True, False), ({"500": 1}, 1, False, True)])
def test_a_command_passes_as_curl_would_exit(codes, failed, needs_success, expected):
    run = parse_curl("curl %s http://app.prod/" % ("-f" if needs_success else "-s"))
    assert passed(run, {"total": 1, "codes": codes, "failed": failed, "workloads": {"app": 1}})[0] is expected


def test_the_hooks_server_plays_curl_through_the_mesh_and_answers_as_a_proxy():
    sent = []

    def send(**request):
        sent.append(request)
        failed = request["host"].startswith("broken")
        return {"total": 1, "codes": {"500" if failed else "200": 1}, "failed": int(failed), "workloads": {"w": 1}}

    server = HooksServer(send=send)
    server.start()
    try:
        proxy = urllib.request.build_opener(urllib.request.ProxyHandler({"http": server.url}))

        def smoke(host):
            body = {"name": "podinfo", "namespace": "test", "metadata": {
                "type": "bash", "cmd": "curl -sd 'anon' http://%s:9898/token | grep token" % host}}
            request = urllib.request.Request("http://flagger-loadtester.test/", data=json.dumps(body).encode(),
                                             headers={"Content-Type": "application/json"})
            try:
                with proxy.open(request, timeout=5) as answer:
                    return answer.status
            except urllib.error.HTTPError as error:
                return error.code

        assert smoke("podinfo-canary.test") == 200
        assert smoke("broken-canary.test") == 500
    finally:
        server.stop()
    assert sent[0] == {"host": "podinfo-canary.test", "namespace": "test", "count": 1, "headers": {}, "path": "/token",
                       "method": "POST", "gateway": "mesh", "source_workload": "flagger-loadtester"}
    assert [call["path"] for call in server.calls()] == ["/", "/"]
