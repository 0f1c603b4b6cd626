"""The report files the controller writes: both formats, idempotent, nothing in check mode."""

from __future__ import annotations

import json
import stat

from ansible_collections.progressive.delivery.plugins.module_utils.report.files import report_json, write_report_files

REPORT = {"canary": {"name": "app", "namespace": "prod"}, "run_id": "run-1", "result": "Succeeded", "reason": "ok <b>",
          "timeline": [], "samples": [], "steps": [10, 20]}


def test_both_files_are_written_in_a_new_directory(tmp_path):
    path = str(tmp_path / "reports" / "app-run-1")
    result = write_report_files(REPORT, path)
    assert result["changed"] and result["written"] == [path + ".json", path + ".html"]
    assert json.loads((tmp_path / "reports" / "app-run-1.json").read_text()) == REPORT
    html = (tmp_path / "reports" / "app-run-1.html").read_text()
    assert "ok &lt;b&gt;" in html and "ok <b>" not in html
    assert stat.S_IMODE((tmp_path / "reports" / "app-run-1.json").stat().st_mode) == 0o644


def test_the_same_report_again_changes_nothing(tmp_path):
    path = str(tmp_path / "app-run-1")
    write_report_files(REPORT, path)
    assert write_report_files(REPORT, path) == {"changed": False, "written": [], "json": path + ".json", "html": path + ".html"}


def test_check_mode_writes_nothing(tmp_path):
    path = str(tmp_path / "new" / "app-run-1")
    assert write_report_files(REPORT, path, check_mode=True)["changed"]
    assert not (tmp_path / "new").exists()


def test_the_json_is_laid_out_like_to_nice_json():
    assert report_json({"b": 1, "a": "é"}) == '{\n    "a": "é",\n    "b": 1\n}\n'


def test_the_json_stays_valid_when_a_value_is_not_finite():
    report = {"samples": [{"metric": "request-success-rate", "value": float("nan")}],
              "evidence": [{"test": "rate", "log_e_value": float("inf"), "log_boundary": 5.99}], "ok": (1.5, -float("inf"))}
    text = report_json(report)
    assert json.loads(text) == {"samples": [{"metric": "request-success-rate", "value": None}],
                                "evidence": [{"test": "rate", "log_e_value": None, "log_boundary": 5.99}], "ok": [1.5, None]}
