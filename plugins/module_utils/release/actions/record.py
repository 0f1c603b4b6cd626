# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``record``: store one analysis result and tell its story in Events."""

from __future__ import annotations

from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.canary_action import CanaryAction


class Record(CanaryAction):
    """Store one analysis (weight, metrics, webhooks, failed checks, phase)."""

    def apply(self, rule: st.Rule) -> None:
        params = self.params
        analysis = dict(params.analysis or {})
        if params.phase and not analysis.get("phase"):
            analysis["phase"] = params.phase
        if not analysis:
            raise self.fail("action=record needs 'analysis' (weight, metrics, webhooks, failed_checks, phase, iteration)")
        before = self.state.copy()
        now = self.clock()
        self._read_target()

        def mutate(state: st.CanaryState) -> bool:
            state.run_id = params.run_id
            return st.apply_record(state, analysis, now, params.history_limit)

        try:
            self._update_state(mutate)
        except ValueError as exc:
            raise self.fail("Cannot record the analysis of canary %s/%s: %s" % (self.ns, params.name, exc)) from None
        after = self.state
        if after.iterations == before.iterations and after.history == before.history:
            self.message = "iteration %s was already recorded" % after.iterations
            return
        if after.failed_checks > before.failed_checks:
            failed = [m.get("name") for m in analysis.get("metrics") or [] if m.get("result") in ("fail", "failed", False)]
            failed += [w.get("name") for w in analysis.get("webhooks") or [] if w.get("result") in ("fail", "failed", False)]
            self._event("Halt %s.%s advancement: %s (failed checks %s)" % (
                params.target_name, self.ns, analysis.get("message") or ", ".join(str(f) for f in failed if f) or
                "a check failed", after.failed_checks), warning=True)
        if after.canary_weight != before.canary_weight:
            self._event("Advance %s.%s canary weight %s" % (params.target_name, self.ns, after.canary_weight))
        if after.phase != before.phase:
            self._event("Canary %s.%s is %s" % (params.target_name, self.ns, after.phase))
        self.message = "recorded iteration %s at weight %s" % (after.iterations, after.canary_weight)
