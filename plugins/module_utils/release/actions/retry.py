# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``retry``: re-arm a Failed release so the next run analyses the same revision again."""

from __future__ import annotations

from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.canary_action import CanaryAction


class Retry(CanaryAction):
    """Clear the failed revision and the counters."""

    def apply(self, rule: st.Rule) -> None:
        params = self.params
        self._read_target()
        message = "Retry armed for revision %s of %s.%s: the next run analyses it again" % (
            self.state.failed_spec, params.target_name, self.ns)
        self._update_state(self._transition("retry", rule.to or st.INITIALIZED, message, self.clock(), failed_spec=None,
                                            failed_checks=0, iterations=0, canary_weight=0, reason=""))
        self._event(message)
        self.message = message
