# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The entry point of ``canary_step``: one action against one canary, ``CanaryManager(...).run()``.

Each action is a class of its own in ``release/actions/`` (``initialize.py``, ``start.py``, ``record.py``,
``promote.py``, ``rollback.py``, ``retry.py``, ``update_target.py``, ``lock.py``, ``status.py``,
``detect.py``, ``store_report.py``, ``delete.py``, and ``prepare.py``, which runs lock, initialize, update_target and
detect in one call) on the shared base ``canary_action.CanaryAction``; this file names the class for each action.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from ansible_collections.progressive.delivery.plugins.module_utils.alerts.delivery import AlertOptions
from ansible_collections.progressive.delivery.plugins.module_utils.kube.store import CanaryFailure
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.pushgateway import PushOptions
from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.canary_action import CanaryAction
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.delete import Delete
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.detect import Detect
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.initialize import Initialize
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.lock import Lock, Unlock
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.prepare import Prepare
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.promote import Finalize, Promote
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.record import Record
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.retry import Retry
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.rollback import Rollback
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.start import Start
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.status import Status
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.store_report import StoreReport
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.update_target import UpdateTarget


@dataclass
class CanaryParams:  # pylint: disable=too-many-instance-attributes
    action: str
    name: str
    namespace: str
    run_id: str
    holder: str
    target: str | None = None
    target_kind: str = "Deployment"
    service: dict[str, Any] | None = None
    virtual_service: dict[str, Any] | None = None
    # The router (istio or gatewayapi) and, for the Gateway API, the HTTPRoute apiVersion asked for.
    provider: str = "istio"
    route_api_version: str | None = None
    autoscaler: str | None = None
    progress_deadline_seconds: int = 600
    lease_ttl: int = 120
    # lock (and prepare) wait this many seconds for another run to give the lock back.
    lock_wait: int = 0
    # prepare: the Canary's spec.suspend; the run takes the lock and changes nothing.
    suspended: bool = False
    analysis: dict[str, Any] | None = None
    phase: str | None = None
    reason: str | None = None
    on_resume: str = "resume"
    wait_timeout: int | None = None
    history_limit: int = st.HISTORY_LIMIT
    image: str | None = None
    container: str | None = None
    pod_annotations: dict[str, str] | None = None
    poll_interval: float = 0.5
    # Flagger's primaryReadyThreshold / canaryReadyThreshold: percent of updated replicas that must be available.
    primary_ready_threshold: int = 100
    canary_ready_threshold: int = 100
    # Where Flagger's flagger_canary_* series are pushed after every state write; None: not pushed.
    pushgateway: PushOptions | None = None
    # The Canary's alerts and how to reach their providers; None: the Canary has none.
    alerts: AlertOptions | None = None
    # initialize takes over the objects Flagger generated for the Canary of the same name.
    adopt_flagger: bool = False
    # status follows the release until it ends (a status_watch.WatchOptions), and returns the stored report of a run.
    watch: Any = None
    report_run: str | None = None
    # store_report keeps this report, and the reports of the last reports_kept runs.
    report: dict[str, Any] | None = None
    reports_kept: int = 10

    @property
    def target_name(self) -> str:
        return self.target or self.name

    @property
    def wait_seconds(self) -> int:
        return self.wait_timeout if self.wait_timeout is not None else self.progress_deadline_seconds


# Every action of ``state.ACTIONS``, by name, and ``delete``, which takes a canary down in any phase.
ACTION_CLASSES: dict[str, type[CanaryAction]] = {
    "initialize": Initialize,
    "detect": Detect,
    "start": Start,
    "record": Record,
    "promote": Promote,
    "finalize": Finalize,
    "rollback": Rollback,
    "retry": Retry,
    "status": Status,
    "lock": Lock,
    "unlock": Unlock,
    "update_target": UpdateTarget,
    "prepare": Prepare,
    "store_report": StoreReport,
    "delete": Delete,
}
# canary_step's choices for ``action``.
ACTIONS = tuple(ACTION_CLASSES)


class CanaryManager:
    """Run ``params.action`` on the canary ``params.name``; the result is what ``canary_step`` returns."""

    def __init__(self, client: Any, params: CanaryParams, check_mode: bool = False,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        self.action_name = params.action
        action = ACTION_CLASSES.get(params.action)
        self.action = action(client, params, check_mode, clock, sleep) if action is not None else None

    def run(self) -> dict[str, Any]:
        if self.action is None:
            raise CanaryFailure("unknown action %r, expected one of %s" % (self.action_name, ", ".join(ACTIONS)))
        return self.action.run()
