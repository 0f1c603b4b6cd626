# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``detect``: is there a new revision of the target to release?"""

from __future__ import annotations

from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.canary_action import CanaryAction


class Detect(CanaryAction):
    """Hash the target's revision and compare it with the recorded ones."""

    def apply(self, rule: st.Rule) -> None:
        self._target_revision()
        self.revision, self.message = st.revision_status(self.state, self.checksum or "")
