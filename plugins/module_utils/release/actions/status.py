# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``status``: the stored state, read only."""

from __future__ import annotations

from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.canary_action import CanaryAction


class Status(CanaryAction):
    """Return the stored state."""

    def apply(self, rule: st.Rule) -> None:
        self.message = self.state.message or "phase %s" % (self.state.phase or "not initialized")
