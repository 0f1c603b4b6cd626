# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where traffic goes at each step of a release, for each of Flagger's deployment strategies.

The release loop walks the plan's steps the same way for every strategy; this
file says what a step means for the VirtualService:

* ``canary``: the canary gets the step's weight of the weighted route. With
  ``mirror`` a leading step of weight 0 mirrors traffic to the canary first;
  with ``sessionAffinity`` a user once served by the canary keeps reaching it.
* ``ab-testing``: requests matching ``analysis.match`` go to the canary, all
  others stay on the primary, for every iteration.
* ``blue-green``: the canary gets no user traffic during the iterations (the
  load comes from rollout webhooks); ``blue-green-mirror`` copies
  ``mirrorWeight`` % of the requests to it, answers discarded. The last step
  routes all traffic to the canary and is analysed once more before the
  promotion, as Flagger does.

Everything the strategy adds to the VirtualService (match route, mirror,
sticky routes) is removed when traffic goes back to the primary, whatever the
outcome. Pure functions: no I/O, so each strategy's routing is a unit test.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Mapping

CANARY = "canary"
AB_TESTING = "ab-testing"
BLUE_GREEN = "blue-green"
BLUE_GREEN_MIRROR = "blue-green-mirror"
STRATEGIES = (CANARY, AB_TESTING, BLUE_GREEN, BLUE_GREEN_MIRROR)
ITERATION_STRATEGIES = (AB_TESTING, BLUE_GREEN, BLUE_GREEN_MIRROR)

CONFIRM_TRAFFIC_INCREASE = "confirm-traffic-increase"
CONFIRM_PROMOTION = "confirm-promotion"
TOTAL_WEIGHT = 100
# Flagger's sessionAffinity.maxAge default: one day.
DEFAULT_COOKIE_MAX_AGE = 86400


@dataclass(frozen=True)
class Strategy:
    """One plan's strategy: its steps and what each one routes."""

    name: str
    steps: tuple[int, ...]
    match: tuple[Mapping[str, Any], ...] = ()
    mirror_weight: int | None = None
    session_affinity: Mapping[str, Any] | None = None
    sticky_value: str = ""
    interval_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.name not in STRATEGIES:
            raise ValueError("strategy must be one of %s, got %r" % (", ".join(STRATEGIES), self.name))
        if not self.steps:
            raise ValueError("a release needs at least one step")
        if self.name == AB_TESTING and not self.match:
            raise ValueError("the ab-testing strategy needs analysis.match")

    @classmethod
    def from_plan(cls, plan: Mapping[str, Any], checksum: str = "") -> "Strategy":
        """The strategy of a plan the ``canary_plan`` filter built; ``checksum`` names the revision under release."""
        affinity = plan.get("session_affinity") or None
        return cls(name=str(plan.get("strategy") or CANARY), steps=tuple(int(s) for s in plan["steps"]),
                   match=tuple(plan.get("match") or ()), mirror_weight=plan.get("mirror_weight"),
                   session_affinity=affinity, interval_seconds=float(plan.get("interval_seconds") or 60.0),
                   sticky_value=sticky_cookie_value(plan, checksum) if affinity else "")

    @property
    def iterations(self) -> bool:
        return self.name in ITERATION_STRATEGIES

    @property
    def switches_to_canary(self) -> bool:
        """Blue/green ends with one step that routes all traffic to the canary before the promotion."""
        return self.name in (BLUE_GREEN, BLUE_GREEN_MIRROR) and len(self.steps) > 1 and self.steps[-1] == TOTAL_WEIGHT

    @property
    def iteration_count(self) -> int:
        return len(self.steps) - 1 if self.switches_to_canary else len(self.steps)

    def is_mirror_step(self, index: int) -> bool:
        if index < 0 or self.mirror_weight is None:
            return False
        if self.name == BLUE_GREEN_MIRROR:
            return self.steps[index] == 0
        # Flagger's canary with mirroring: one mirrored step before the first weight.
        return self.name == CANARY and index == 0 and self.steps[0] == 0

    def gate_before_leaving(self, index: int) -> str | None:
        """The gate asked once the analysis at ``index`` passed: Flagger asks for a traffic increase only in the canary strategy."""
        last = len(self.steps) - 1
        if not self.iterations:
            return CONFIRM_PROMOTION if index >= last else CONFIRM_TRAFFIC_INCREASE
        promotion_index = last - 1 if self.switches_to_canary else last
        return CONFIRM_PROMOTION if index == promotion_index else None

    def label(self, index: int) -> str:
        """How people read a step: ``weight 20%``, ``iteration 2/5``, ``mirror 50%``, ``all traffic on the canary``."""
        if index < 0:
            return "pre-rollout checks"
        if self.switches_to_canary and index == len(self.steps) - 1:
            return "all traffic on the canary"
        if self.iterations:
            text = "iteration %d/%d" % (index + 1, self.iteration_count)
            if self.is_mirror_step(index):
                text += ", mirroring %d%%" % self.mirror_weight
            return text
        if self.is_mirror_step(index):
            return "mirroring %d%%" % self.mirror_weight
        return "weight %d%%" % self.steps[index]

    def route(self, index: int) -> dict[str, Any]:
        """The ``vs_weight`` options (beyond name and destinations) that put the VirtualService at step ``index``."""
        if index < 0:
            return self.primary_only()
        weight = self.steps[index]
        params: dict[str, Any] = {"weight": weight, "mirror": {"enabled": False}, "match": {"state": "absent"}}
        if self.is_mirror_step(index):
            params["mirror"] = {"enabled": True, "percentage": float(self.mirror_weight or TOTAL_WEIGHT)}
        if self.name == AB_TESTING:
            params["match"] = {"state": "present", "headers": [dict(m) for m in self.match]}
        if self.session_affinity:
            params["session_affinity"] = self.sticky(present=weight > 0, index=index)
        return params

    def primary_only(self) -> dict[str, Any]:
        """All traffic on the primary and nothing of the strategy left in the VirtualService."""
        params: dict[str, Any] = {"weight": 0, "mirror": {"enabled": False}, "match": {"state": "absent"}}
        if self.session_affinity:
            params["session_affinity"] = self.sticky(present=False)
        return params

    def all_to_canary(self) -> dict[str, Any]:
        params = self.primary_only()
        params["weight"] = TOTAL_WEIGHT
        return params

    def sticky(self, present: bool, index: int = -1) -> dict[str, Any]:
        """The sticky routes: the canary's cookie lasts ``maxAge``; the primary's only one step, as in Flagger.

        A user kept on the primary is split again at the next step, so the canary's share of returning users
        grows with its weight; a new cookie value per step makes the previous step's cookie match nothing.
        """
        if not present:
            # The cookie routes go; a browser keeping the cookie of this release matches nothing in the next one,
            # whose cookie value differs.
            return {"state": "absent", "expire": False}
        affinity = self.session_affinity or {}
        sticky: dict[str, Any] = {"state": "present",
                                  "cookie": "%s=%s" % (affinity["cookie_name"], self.sticky_value),
                                  "max_age": int(affinity.get("max_age") or DEFAULT_COOKIE_MAX_AGE)}
        if affinity.get("primary_cookie_name"):
            sticky["primary_cookie"] = "%s=%s-%d" % (affinity["primary_cookie_name"], self.sticky_value, index + 1)
            sticky["primary_max_age"] = max(1, int(math.ceil(self.interval_seconds)))
        return sticky


def sticky_cookie_value(plan: Mapping[str, Any], checksum: str) -> str:
    """One cookie value per release: a resumed run keeps the sessions the dead run made sticky."""
    seed = "%s/%s/%s" % (plan.get("namespace"), plan.get("name"), checksum)
    return hashlib.sha256(seed.encode("utf-8")).hexdigest()[:16]
