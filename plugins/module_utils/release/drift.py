# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drift: the live route and workloads against the position the state recorded, and what a run does about it.

A run that failed half way or was killed can leave the route, the canary's replicas and the state out of step:
the state says ``Failed`` while the route still gives the canary 30 %, or the canary gets traffic with no pod to
answer it. An operator such as Flagger fixes that on its next tick; here the next run does, before anything else.
This file only compares data; ``actions/detect.py`` reads the cluster and the role makes the repair.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st

# A release in one of these phases is over (or not started): its only safe position is all traffic on the primary
# and the canary at 0 replicas.
SETTLED = frozenset([st.INITIALIZED, st.SUCCEEDED, st.FAILED])


@dataclass(frozen=True)
class LiveView:  # pylint: disable=too-many-instance-attributes
    """What the cluster shows now; weights are None when the route could not be read (``route_error`` says why)."""

    primary_weight: int | None = None
    canary_weight: int | None = None
    route: str = ""
    route_error: str = ""
    canary_replicas: int = 0
    canary_ready: int = 0
    primary_replicas: int | None = None
    primary_ready: int | None = None
    # The A/B match route this collection adds, which sends matching requests to the canary whatever the weights.
    match_route: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"route": self.route, "route_error": self.route_error or None, "match_route": self.match_route,
                "primary_weight": self.primary_weight, "canary_weight": self.canary_weight,
                "canary_replicas": self.canary_replicas, "canary_ready_replicas": self.canary_ready,
                "primary_replicas": self.primary_replicas, "primary_ready_replicas": self.primary_ready}


def deployment_replicas(deployment: dict[str, Any] | None) -> tuple[int, int]:
    """(desired, ready) replicas of a Deployment as the API returns it; (0, 0) when it does not exist."""
    if not deployment:
        return 0, 0
    desired = (deployment.get("spec") or {}).get("replicas")
    ready = (deployment.get("status") or {}).get("readyReplicas")
    # The API leaves spec.replicas out only when it is the default, 1.
    return (1 if desired is None else int(desired)), int(ready or 0)


def _recorded(state: st.CanaryState) -> dict[str, Any]:
    return {"phase": state.phase, "canary_weight": state.canary_weight, "step_index": state.step_index,
            "run_id": state.run_id, "last_update_time": state.last_update_time}


def _position(state: st.CanaryState) -> str:
    text = "%s at %s%%" % (state.phase, state.canary_weight)
    if state.phase not in SETTLED and state.step_index is not None and state.step_index >= 0:
        text += " (step %d)" % (state.step_index + 1)
    return text


def assess(state: st.CanaryState, live: LiveView, resume: dict[str, Any], revision: str | None,
           canary: str) -> dict[str, Any]:
    """Compare ``live`` with ``state``; the result is what ``detect`` and ``status`` return as ``drift``.

    ``resume`` is :func:`state.resume_plan`'s answer for this run, ``revision`` what ``revision_status`` said of the
    target (None when the target was not read), ``canary`` the ``namespace/name`` the messages name.

    Keys: ``found`` (the cluster is not where the state says), ``problems`` (each in words), ``recorded``,
    ``live``, ``route_to_primary`` (all traffic must go to the primary before anything else), ``scale_down`` (then
    the canary goes to 0 replicas: only for a release that is over), ``next`` (``none``, ``repair``, or the resume
    action that takes the release over) and ``message`` (one line for people: what was found, what is done).
    """
    problems: list[str] = []
    weight = live.canary_weight
    serving = live.canary_replicas > 0 and live.canary_ready > 0
    settled = state.phase in SETTLED
    route_to_primary = False
    scale_down = False
    where = "the route %s" % live.route if live.route else "the route"
    if resume.get("action") == "wait":
        # Another live run owns the traffic: its route writes may lead its records by a step.
        return _result(state, live, [], False, False, "wait",
                       "run %s holds the lock of canary %s and drives its traffic: nothing to compare"
                       % (state.run_id, canary))
    if weight is not None and weight > 0 and not serving:
        problems.append("%s sends %s%% of the requests to the canary, which has %d of %d replicas ready"
                        % (where, weight, live.canary_ready, live.canary_replicas))
        route_to_primary = True
    if settled:
        if live.match_route:
            problems.append("%s still has the A/B match route %r, which sends matching requests to the canary"
                            % (where, live.match_route))
            route_to_primary = True
        if weight is not None and weight > 0:
            if not problems:
                problems.append("%s sends %s%% of the requests to the canary although the release is %s"
                                % (where, weight, state.phase))
            route_to_primary = True
        # A new revision is about to be analysed: start sizes the canary for it. A route that could not be read
        # may still send the canary requests, so its pods stay.
        if live.canary_replicas > 0 and revision != st.NEW_REVISION and weight is not None:
            problems.append("the canary has %d replicas although the release is %s" % (live.canary_replicas, state.phase))
            scale_down = True
    elif weight is not None and weight != state.canary_weight:
        problems.append("%s gives the canary %s%% but the state recorded %s%%" % (where, weight, state.canary_weight))
    if not problems:
        return _result(state, live, [], False, False, "none", "")
    found = "the state says %s (run %s) but %s" % (_position(state), state.run_id or "?", "; ".join(problems))
    if settled:
        action = "repair"
        todo = "all traffic to the primary, then the canary scaled to 0" if route_to_primary and scale_down \
            else "all traffic to the primary" if route_to_primary else "the canary scaled to 0"
    else:
        action = resume.get("action") or "none"
        todo = _in_progress_todo(state, action, route_to_primary)
    message = "Drift on canary %s: %s. Repair: %s." % (canary, found, todo)
    return _result(state, live, problems, route_to_primary, scale_down, action, message)


def _in_progress_todo(state: st.CanaryState, action: str, route_to_primary: bool) -> str:
    first = "all traffic to the primary first, then " if route_to_primary else ""
    if action == "resume":
        return first + "the release resumes at the recorded %s%% once the canary is ready" % state.canary_weight
    if action == "rollback":
        return first + "the release is rolled back (canary_on_resume=rollback)"
    if action in ("promote", "finalize"):
        return first + "the promotion the state recorded is finished"
    if action == "restart":
        return "all traffic to the primary, then the analysis restarts with the new revision"
    return first + "the release goes on from the recorded position"


def _result(state: st.CanaryState, live: LiveView, problems: list[str], route_to_primary: bool, scale_down: bool,
            action: str, message: str) -> dict[str, Any]:
    return {"found": bool(problems), "problems": problems, "recorded": _recorded(state), "live": live.to_dict(),
            "route_to_primary": route_to_primary, "scale_down": scale_down, "next": action, "message": message}
