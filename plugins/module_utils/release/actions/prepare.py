# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``prepare``: what every run does before its release, in one call: lock, initialize, update_target, detect.

Each is the action of the same name, run in that order with the same options, and stops the call where it fails.
``update_target`` runs only when the call is given an image or pod annotations; a suspended canary
(``suspended``) only takes the lock. The result is detect's, with what the others add: whether initialize created
the canary (``initialized``) or changed any object (``initialize_changed``), the route's apiVersion it found
served, every step's changes, warnings and diffs, and the ``decision`` the run takes from there
(``run_decision``), whose line the task prints.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ansible_collections.progressive.delivery.plugins.module_utils.kube.store import CanaryFailure
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.canary_action import CanaryAction
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.detect import Detect
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.initialize import Initialize
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.lock import Lock
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.update_target import UpdateTarget
from ansible_collections.progressive.delivery.plugins.module_utils.release.run_decision import decide_run

STEPS: tuple[tuple[str, type[CanaryAction]], ...] = (
    ("lock", Lock), ("initialize", Initialize), ("update_target", UpdateTarget), ("detect", Detect))


def route_api_version(state: dict[str, Any]) -> str:
    """The apiVersion of the route initialize found served (HTTPRoute or VirtualService), as the state records it."""
    for key in ("route", "virtualService"):
        version = (state.get(key) or {}).get("apiVersion")
        if version:
            return str(version)
    return ""


class Prepare(CanaryAction):
    """Lock, initialize, update the target when asked, and detect, as one action."""

    def run(self) -> dict[str, Any]:
        done: dict[str, dict[str, Any]] = {}
        for name, action_class in self._steps():
            action = action_class(self.client, dataclasses.replace(self.params, action=name), self.check_mode,
                                  self.clock, self.sleep)
            try:
                done[name] = action.run()
            except CanaryFailure as failure:
                done[name] = failure.result
                raise CanaryFailure(failure.message, self._merged(done, name)) from None
        result = self._merged(done, list(done)[-1])
        decision = decide_run(result, self.params.suspended, "%s/%s" % (self.ns, self.params.name),
                              "%s/%s" % (self.ns, self.params.target_name))
        result["decision"] = decision.as_dict()
        return result

    def _steps(self) -> list[tuple[str, type[CanaryAction]]]:
        if self.params.suspended:
            return [STEPS[0]]
        wanted = bool(self.params.image or self.params.pod_annotations)
        return [(name, action) for name, action in STEPS if name != "update_target" or wanted]

    @staticmethod
    def _merged(done: dict[str, dict[str, Any]], last: str) -> dict[str, Any]:
        """The last step's result, with every step's changes, warnings and diffs, and what initialize found."""
        result = dict(done[last])
        initialized = done.get("initialize") or {}
        diffs = [r["diff"] for r in done.values() if r.get("diff") and (r["diff"].get("before") or r["diff"].get("after"))]
        result.update(
            changed=any(r.get("changed") for r in done.values()),
            initialized=bool(initialized.get("initialized")),
            initialize_changed=bool(initialized.get("changed")),
            route_api_version=route_api_version(initialized.get("state") or {}),
            actions=[change for r in done.values() for change in r.get("actions") or []],
            warnings_list=[warning for r in done.values() for warning in r.get("warnings_list") or []],
            steps=list(done),
            diff=diffs,
        )
        return result
