# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of progressive.delivery.canary_analysis: the analysis loop of one weight step, in this process."""

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.progressive.delivery.plugins.module_utils.release.analysis_task import (
    ANALYSIS_ARG_SPEC,
    AnalysisTaskError,
    run_analysis_task,
)

display = Display()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=ANALYSIS_ARG_SPEC)
        if self._task.check_mode and args["stage"] not in ("route", "report", "preflight", "plan", "templates"):
            result.update(changed=False, skipped=True,
                          msg="canary_analysis needs live traffic and webhooks: it does not run in check mode")
            return result
        try:
            result.update(run_analysis_task(args, say=display.display, check_mode=bool(self._task.check_mode),
                                            playbook_dir=str((task_vars or {}).get("playbook_dir") or "")))
        except AnalysisTaskError as exc:
            # Returned, not raised: a task's retries/until only see failures that come back as results.
            result.update(exc.result, failed=True, msg=exc.message)
        return result
