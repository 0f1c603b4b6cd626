# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: canary_report_html
version_added: 0.1.0
short_description: Render a canary release report as a self-contained HTML page
description:
  - Turns the report of one canary release (the dictionary the C(progressive.delivery.canary) role writes as JSON)
    into one HTML page with no external assets, styles or scripts, so it can be archived as a CI or AWX artifact
    and opened anywhere.
  - The page shows the canary, its result (Succeeded, Failed, NothingToDo, Initialized or Error), the reason, duration, run id and analysis mode;
    a timeline chart with the canary weight as a step line and one panel per metric with its values against its threshold,
    failed checks, and the promotion or rollback marked with a vertical line; and a table of every recorded step with the
    weight, each metric's value and verdict, the webhooks called, the failed-check count and the message.
  - Every text from the report (metric names, reasons, webhook names, messages) is escaped, so a report cannot inject markup.
  - Missing or malformed fields are shown as unknown instead of failing, so the report of an interrupted run still renders.
author:
  - progressive.delivery maintainers (@progressive-delivery)
options:
  _input:
    description:
      - The report as a dictionary, or its JSON text.
      - "Keys used: C(canary) (C(name), C(namespace)), C(run_id), C(mode), C(result), C(reason), C(started_at),
        C(finished_at), C(duration_seconds), C(final_weight), C(failed_checks), C(threshold), C(steps), C(thresholds)
        (list of C(metric), C(min), C(max)), C(timeline) (list of C(time), C(kind), C(weight), C(metrics), C(webhooks),
        C(failed_checks), C(message)), C(samples) (list of C(time), C(metric), C(value), C(weight)) and, in sequential
        mode, C(evidence) (list of C(time), C(weight), C(metric), C(test), C(log_e_value), C(log_boundary)), drawn as a
        second chart of each test's evidence against its rollback boundary."
      - Times are ISO 8601 text (a trailing C(Z) is accepted) or epoch seconds.
    type: raw
    required: true
seealso:
  - name: Canary role reports
    description: How and where the role writes the JSON and HTML report of each run.
    link: https://github.com/progressive-delivery/progressive.delivery/blob/main/docs/role.md
"""

EXAMPLES = r"""
- name: Read the JSON report of the last run
  ansible.builtin.set_fact:
    release_report: "{{ lookup('ansible.builtin.file', 'reports/backend-service-' ~ run_id ~ '.json') | ansible.builtin.from_json }}"

- name: Write the HTML page next to it
  ansible.builtin.copy:
    content: "{{ release_report | progressive.delivery.canary_report_html }}"
    dest: "reports/backend-service-{{ run_id }}.html"
    mode: "0644"
"""

RETURN = r"""
_value:
  description: A complete HTML document (UTF-8 text) that is also well-formed XML.
  type: string
"""

import json
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.progressive.delivery.plugins.module_utils.report.html import render_report_html


def canary_report_html(report):
    if isinstance(report, (str, bytes)):
        try:
            report = json.loads(report)
        except ValueError as error:
            raise AnsibleFilterError(
                "canary_report_html: the input text is not a JSON report (%s); pass the report dictionary or its JSON text" % error
            ) from error
    if not isinstance(report, Mapping):
        raise AnsibleFilterError(
            "canary_report_html: expected the report as a dictionary (the JSON the canary role writes), got %s" % type(report).__name__
        )
    return render_report_html(report)


class FilterModule:
    """Release report rendering."""

    def filters(self):
        return {"canary_report_html": canary_report_html}
