# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a run does once ``prepare`` has looked at the canary: the path it takes and the line that says why.

The canary role runs the release, or stops, along ``path``:

* ``suspended``: the Canary has ``spec.suspend: true``; nothing changes;
* ``nothing``: no new revision (or a canary just initialized); the run ends with ``result``;
* ``new``: a new revision starts its analysis;
* ``continue``, ``resume``, ``restart``, ``promote``, ``finalize``, ``rollback``: what to do about the release in
  progress, as ``state.resume_plan`` decided it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st

RESUME_PATHS = ("resume", "restart", "promote", "finalize", "rollback")
# The paths that run the release task; the others end the run with ``result``.
RELEASE_PATHS = ("new", "continue") + RESUME_PATHS


@dataclass(frozen=True)
class RunDecision:
    path: str
    message: str
    # Only for a run that ends without a release: Initialized or NothingToDo, and why.
    result: str = ""
    reason: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _path(detected: Mapping[str, Any]) -> str:
    revision = detected.get("revision")
    if revision == st.NOTHING_TO_DO:
        return "nothing"
    if revision == st.NEW_REVISION:
        return "new"
    action = (detected.get("resume") or {}).get("action")
    return action if action in RESUME_PATHS else "continue"


def _no_release(detected: Mapping[str, Any], canary: str, target: str) -> RunDecision:
    drift = detected.get("drift") or {}
    if detected.get("initialized"):
        reason = "primary and routing created; the next revision of %s will be analysed" % target
        return RunDecision("nothing", "Initialized %s: %s" % (canary, reason), "Initialized", reason)
    reason = detected.get("message") or "no new revision"
    if drift.get("found"):
        reason += "; drift repaired: " + "; ".join(drift.get("problems") or [])
        # Printed before the repair runs: the repair's own lines follow it.
        message = "No new revision of %s: putting traffic and replicas back where the state says (%s)" % (target, reason)
    else:
        message = "No new revision of %s: nothing changes (%s)" % (target, reason)
    return RunDecision("nothing", message, "NothingToDo", reason)


def decide_run(detected: Mapping[str, Any], suspended: bool, canary: str, target: str) -> RunDecision:
    """The path of a run from what ``prepare`` found; ``canary`` and ``target`` are ``namespace/name``."""
    if suspended:
        return RunDecision("suspended", "Canary is suspended (spec.suspend): nothing changes, the target included",
                           "NothingToDo", "spec.suspend is true: the canary is suspended")
    path = _path(detected)
    if path == "nothing":
        return _no_release(detected, canary, target)
    resume = detected.get("resume") or {}
    previous = resume.get("previous_run") or "?"
    messages = {
        "new": "New revision %s of %s: starting the canary analysis" % (detected.get("checksum") or "", target),
        "resume": "Resuming the release left by run %s at weight %s%% (phase %s)"
                  % (previous, resume.get("weight") or 0, resume.get("phase") or "?"),
        "restart": "Restarting the analysis from step 1: %s"
                   % (resume.get("message") or "a new revision replaced the one in progress"),
        "continue": "Continuing the release of this run at weight %s%%" % (resume.get("weight") or 0),
        "promote": "Finishing the promotion left by run %s" % previous,
        "finalize": "Finishing the promotion left by run %s" % previous,
        "rollback": "Rolling back the release left by run %s (canary_on_resume=rollback)" % previous,
    }
    return RunDecision(path, messages[path])
