# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``report`` stage of canary_analysis: the run's report as files, kept in the cluster, and as AWX's stats.

One task does all three, so a release pays Ansible's cost of a task once for its report.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.kube.client import client_from_auth, resolve_auth
from ansible_collections.progressive.delivery.plugins.module_utils.kube.errors import KubeApiError
from ansible_collections.progressive.delivery.plugins.module_utils.release.lease import run_identity
from ansible_collections.progressive.delivery.plugins.module_utils.release.manager import CanaryManager, CanaryParams
from ansible_collections.progressive.delivery.plugins.module_utils.report.files import write_report_files


class ReportTaskError(DeliveryError):
    """The report cannot be written where it was asked to be."""


def outcome_stats(report: Mapping[str, Any], html: str) -> dict[str, Any]:
    """What AWX shows of the run (set_stats' data): the outcome of this release, replacing an earlier one's."""
    return {"canary_phase": report.get("result") or "", "canary_reason": report.get("reason") or "",
            "canary_final_weight": int(report.get("final_weight") or 0),
            "canary_failed_checks": int(report.get("failed_checks") or 0),
            "canary_duration_seconds": report.get("duration_seconds"), "canary_report": html,
            "canary_run_id": report.get("run_id") or ""}


def summary_line(report: Mapping[str, Any], html: str) -> str:
    canary = report.get("canary") or {}
    return "%s/%s: %s after %s s (%s)%s" % (
        canary.get("namespace"), canary.get("name"), report.get("result") or "", report.get("duration_seconds"),
        report.get("reason") or "", "; report: %s" % html if html else "")


def store_report(args: Mapping[str, Any], report: Mapping[str, Any], check_mode: bool) -> dict[str, Any]:
    """Keep the report in ``<canary>-canary-reports``; the action turns any failure into a warning."""
    canary = report.get("canary") or {}
    run_id, holder = run_identity(str(report.get("run_id") or args.get("run_id") or ""), args.get("holder"))
    try:
        kube = client_from_auth(resolve_auth(args))
    except KubeApiError as exc:
        return {"warnings_list": ["the report was not kept in the cluster: %s" % exc.message]}
    params = CanaryParams(action="store_report", name=str(canary.get("name")), namespace=str(canary.get("namespace")),
                          run_id=run_id, holder=holder, target=canary.get("target"), report=dict(report),
                          reports_kept=int(args["reports_kept"]))
    return CanaryManager(kube, params, check_mode=check_mode).run()


def report_release(args: Mapping[str, Any], say: Callable[[str], None], check_mode: bool = False) -> dict[str, Any]:
    report = args.get("report")
    if not report:
        raise ReportTaskError("stage=report needs report: the release report the canary_report filter assembles")
    if not args.get("report_path") and not args.get("reports_kept") and not args.get("publish_stats"):
        raise ReportTaskError("stage=report needs report_path (where to write it, without extension), reports_kept "
                              "(how many runs to keep in the cluster) or publish_stats")
    result: dict[str, Any] = {"changed": False, "written": [], "warnings": []}
    html = ""
    if args.get("report_path"):
        # A path taken from the playbook's directory reads as people would write it: no "playbooks/../reports".
        path = os.path.normpath(args["report_path"])
        try:
            result.update(write_report_files(report, path, check_mode))
        except OSError as exc:
            raise ReportTaskError("cannot write the report to %s.json/.html: %s" % (path, exc)) from None
        html = result["html"]
    if args.get("reports_kept"):
        kept = store_report(args, report, check_mode)
        result["warnings"].extend(kept.get("warnings_list") or [])
        result["stored_report"] = kept.get("stored_report")
        result["changed"] = result["changed"] or bool(kept.get("changed"))
    if args.get("publish_stats"):
        # What ansible.builtin.set_stats returns: the play publishes it for AWX and prints it at the end.
        result["ansible_stats"] = {"data": outcome_stats(report, html), "per_host": False, "aggregate": False}
    say(summary_line(report, html))
    if not result["warnings"]:
        del result["warnings"]
    return result
