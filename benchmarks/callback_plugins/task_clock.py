# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wall time and CPU of every task of a run, for benchmarks/fleet.py (not part of the collection).

With the linear strategy a task starts once the previous one has ended on every host, so the time from one task's
start to the next one's is that task's wall time over the whole fleet. CPU is split between ansible-playbook's main
process (which queues every host's task) and the workers it forked and reaped meanwhile (one per host and task).
The rows go to the JSON file named by TASK_CLOCK_FILE when the run ends.
"""

from __future__ import annotations

import json
import os
import resource
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: task_clock
type: aggregate
short_description: wall time and CPU of every task, for benchmarks/fleet.py
description:
  - Writes one row per task (name, wall seconds, main process CPU, workers' CPU) to the file TASK_CLOCK_FILE names.
requirements:
  - TASK_CLOCK_FILE in the environment
"""


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_clock"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict] = []
        self.current: tuple[str, float, float, float] | None = None

    def _end_current(self) -> None:
        if self.current is None:
            return
        name, started, main, workers = self.current
        self.rows.append({"task": name, "wall": time.monotonic() - started,
                          "main_cpu": _cpu(resource.RUSAGE_SELF) - main,
                          "workers_cpu": _cpu(resource.RUSAGE_CHILDREN) - workers})
        self.current = None

    def v2_playbook_on_task_start(self, task, is_conditional) -> None:
        self._end_current()
        self.current = (task.get_name(), time.monotonic(), _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN))

    def v2_playbook_on_stats(self, stats) -> None:
        self._end_current()
        path = os.environ.get("TASK_CLOCK_FILE")
        if path:
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(self.rows, handle)
