"""Reports kept in the ConfigMap <canary>-canary-reports (report/stored.py), and canary_step's store_report and
status report_run against a real HTTP server that keeps objects as the API server does."""

from __future__ import annotations

import base64
import gzip
import json
import random
import re

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.kube.ownership import mark
from ansible_collections.progressive.delivery.plugins.module_utils.kube.store import CanaryFailure
from ansible_collections.progressive.delivery.plugins.module_utils.release.manager import CanaryManager, CanaryParams
from ansible_collections.progressive.delivery.plugins.module_utils.release.status_watch import WatchOptions
from ansible_collections.progressive.delivery.plugins.module_utils.report import stored
from ansible_collections.progressive.delivery.plugins.module_utils.report.html import render_report_html
from tests.support.kube_api import client_for, json_response, status_body

NS = "prod"
NOW = "2026-11-28T08:00:00Z"


def report(run_id, samples=0, result="Succeeded", seed=1):
    rng = random.Random(seed)
    return {"canary": {"name": "web", "namespace": NS, "target": "web"}, "run_id": run_id, "result": result,
            "reason": "promoted", "started_at": "2026-11-28T07:59:00Z", "finished_at": "2026-11-28T08:00:00Z",
            "timeline": [{"time": "2026-11-28T07:59:%02dZ" % (i % 60), "kind": "check", "message": "step %d" % i,
                          "metrics": [], "webhooks": []} for i in range(5)],
            "samples": [{"metric": ("request-success-rate", "request-duration")[i % 2], "value": rng.random() * 100,
                         "time": "2026-11-28T07:59:00.%06dZ" % i, "weight": 30} for i in range(samples)]}


def test_a_run_id_is_its_own_key_when_plain_and_unique_otherwise():
    assert stored.report_key("run-20261128T080000Z-ab12") == "run-20261128T080000Z-ab12"
    odd = stored.report_key("awx job/42.1")
    assert re.fullmatch(r"awx_job_42_1-[0-9a-f]{8}", odd)
    assert stored.report_key("awx_job_42_1") != odd
    assert len(stored.report_key("r" * 400)) <= 253


def test_encoding_is_gzipped_json_and_the_same_for_the_same_report():
    text = stored.encode_report(report("run-1", samples=10))
    assert json.loads(gzip.decompress(base64.b64decode(text)))["run_id"] == "run-1"
    assert stored.encode_report(report("run-1", samples=10)) == text
    assert stored.decode_report(text, "k") == json.loads(gzip.decompress(base64.b64decode(text)))
    with pytest.raises(stored.StoredReportError, match="not gzipped JSON"):
        stored.decode_report(base64.b64encode(b"plain").decode(), "key run-1")


def test_a_report_too_large_for_its_share_thins_its_samples_and_says_so():
    big = report("run-1", samples=3000)
    full = len(stored.encode_report(big))
    text, dropped = stored.fit_report(big, full // 3)
    assert len(text) <= full // 3 and dropped
    kept = stored.decode_report(text, "k")
    assert kept["stored"]["dropped"] == dropped and dropped[0].startswith("samples: one in 2 kept per metric")
    # Every metric keeps its first and last sample; the outcome and the timeline stay whole.
    for metric in ("request-success-rate", "request-duration"):
        times = [s["time"] for s in kept["samples"] if s["metric"] == metric]
        every = [s["time"] for s in big["samples"] if s["metric"] == metric]
        assert times[0] == every[0] and times[-1] == every[-1]
    assert kept["result"] == "Succeeded" and kept["timeline"] == big["timeline"]
    # The report still renders.
    assert "run-1" in render_report_html(kept)
    # A report that fits is stored whole.
    assert stored.fit_report(big, full) == (stored.encode_report(big), [])


def test_a_report_that_cannot_fit_even_trimmed_is_refused():
    with pytest.raises(stored.StoredReportError, match="over the 50 its ConfigMap share allows"):
        stored.fit_report(report("run-1", samples=100), 50)


def entry(run_id, size=10):
    return {"runId": run_id, "key": stored.report_key(run_id), "size": size}


def test_rotation_keeps_the_newest_runs_and_replaces_a_run_stored_again():
    index = []
    for number in range(5):
        index, _removed = stored.rotate(index, entry("run-%d" % number), keep=3)
    assert [e["runId"] for e in index] == ["run-2", "run-3", "run-4"]
    index, removed = stored.rotate(index, entry("run-3", size=11), keep=3)
    assert [e["runId"] for e in index] == ["run-2", "run-4", "run-3"] and removed == []
    index, removed = stored.rotate(index, entry("run-5"), keep=3)
    assert [e["runId"] for e in removed] == ["run-2"]


def test_rotation_drops_the_oldest_while_the_total_is_too_large_but_keeps_the_new_run():
    index = [entry("run-1", 400), entry("run-2", 400)]
    kept, removed = stored.rotate(index, entry("run-3", 300), keep=10, max_total=1000)
    assert [e["runId"] for e in kept] == ["run-2", "run-3"] and [e["runId"] for e in removed] == ["run-1"]
    kept, _removed = stored.rotate([], entry("run-4", 5000), keep=10, max_total=1000)
    assert [e["runId"] for e in kept] == ["run-4"]


def test_with_report_keeps_the_keys_of_the_index_only_and_names_the_latest():
    config_map = {"data": {"other": "kept"}, "binaryData": {"stray": "eA=="}}
    for number in range(4):
        parts, _entry = stored.with_report(config_map, report("run-%d" % number), "run-%d" % number, 2, NOW)
        config_map = parts
    assert sorted(config_map["binaryData"]) == ["run-2", "run-3"]
    assert config_map["data"]["latest"] == "run-3" and config_map["data"]["other"] == "kept"
    assert [e["runId"] for e in stored.parse_index(config_map)] == ["run-2", "run-3"]
    assert stored.load_report(config_map, "latest", "cm")[0]["run_id"] == "run-3"
    assert stored.load_report(config_map, "run-2", "cm")[1]["result"] == "Succeeded"
    with pytest.raises(stored.StoredReportError, match="no report of run 'run-0' is stored in cm; stored runs: run-2, run-3"):
        stored.load_report(config_map, "run-0", "cm")
    with pytest.raises(stored.StoredReportError, match="no report is stored"):
        stored.load_report({"data": {"index.json": "not json"}}, "latest", "cm")


# --------------------------------------------------------------------------- through canary_step, over HTTP


class ObjectApi:
    """ConfigMaps and Leases by path, with resourceVersions; ``refuse`` answers writes with 403."""

    def __init__(self, httpserver):
        self.objects: dict[str, dict] = {}
        self.version = 0
        self.refuse = False
        httpserver.expect_request(re.compile(r"^/api.*$")).respond_with_handler(self.handle)

    def handle(self, request):
        path = request.path
        if request.method == "GET":
            if path not in self.objects:
                return json_response(status_body(404, "NotFound", "not found"), 404)
            return json_response(self.objects[path])
        if self.refuse:
            return json_response(status_body(403, "Forbidden", "configmaps is forbidden: cannot update"), 403)
        body = json.loads(request.data)
        if request.method == "POST":
            path = "%s/%s" % (path, body["metadata"]["name"])
        elif body["metadata"].get("resourceVersion") != self.objects[path]["metadata"]["resourceVersion"]:
            return json_response(status_body(409, "Conflict", "modified"), 409)
        self.version += 1
        body["metadata"]["resourceVersion"] = str(self.version)
        self.objects[path] = body
        return json_response(body, 201 if request.method == "POST" else 200)

    def reports(self):
        return self.objects["/api/v1/namespaces/prod/configmaps/web-canary-reports"]


def step(client, action, **values):
    params = CanaryParams(action=action, name="web", namespace=NS, run_id=values.pop("run_id", "run-x"), holder="h",
                          **values)
    return CanaryManager(client, params).run()


def test_store_report_keeps_the_last_runs_and_status_returns_any_of_them(httpserver):
    api = ObjectApi(httpserver)
    client = client_for(httpserver)
    for number in range(3):
        result = step(client, "store_report", run_id="run-%d" % number, report=report("run-%d" % number),
                      reports_kept=2)
        assert result["changed"] and result["stored_report"]["runId"] == "run-%d" % number
    config_map = api.reports()
    assert sorted(config_map["binaryData"]) == ["run-1", "run-2"]
    assert config_map["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "progressive.delivery",
                                                "progressive.delivery/kind": "canary-reports"}
    # The same report again writes nothing.
    again = step(client, "store_report", run_id="run-2", report=report("run-2"), reports_kept=2)
    assert not again["changed"] and api.reports()["metadata"]["resourceVersion"] == config_map["metadata"]["resourceVersion"]
    status = step(client, "status", report_run="latest")
    assert status["report"]["run_id"] == "run-2" and status["report_run"] == "run-2"
    assert [e["runId"] for e in status["stored_reports"]] == ["run-1", "run-2"]
    with pytest.raises(CanaryFailure, match="no report of run 'run-0' is stored in ConfigMap prod/web-canary-reports; "
                                            "stored runs: run-1, run-2"):
        step(client, "status", report_run="run-0")


def test_a_report_that_cannot_be_stored_is_a_warning_not_a_failure(httpserver):
    api = ObjectApi(httpserver)
    api.refuse = True
    result = step(client_for(httpserver), "store_report", run_id="run-1", report=report("run-1"))
    assert not result["changed"] and result["stored_report"] is None
    assert len(result["warnings_list"]) == 1
    assert result["warnings_list"][0].startswith("the report of run run-1 was not kept in ConfigMap prod/web-canary-reports")
    assert "forbidden" in result["warnings_list"][0]


def test_a_watch_that_times_out_fails_with_what_it_saw_and_returns_its_lines(httpserver):
    api = ObjectApi(httpserver)
    state = {"phase": "Progressing", "canaryWeight": 30, "failedChecks": 1, "history": []}
    api.objects["/api/v1/namespaces/prod/configmaps/web-canary-state"] = mark(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-canary-state", "namespace": NS,
                                                               "resourceVersion": "1"},
         "data": {"state.json": json.dumps(state)}}, NS, "web")
    said = []
    with pytest.raises(CanaryFailure) as caught:
        step(client_for(httpserver), "status", watch=WatchOptions(0.05, 0.3, said.append))
    assert caught.value.message.startswith("Canary prod/web: the release did not end within the watch timeout of 0.3 s "
                                           "(last seen: Progressing, weight 30%, failed checks 1, no lock)")
    assert "no run holds the lock" in caught.value.message
    watched = caught.value.result["watch"]
    assert watched["timed_out"] and watched["lines"] == said and len(said) == 1
    assert caught.value.result["phase"] == "Progressing"
