# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``update_target``: roll a new image or pod annotations into the user's target Deployment."""

from __future__ import annotations

from typing import Any

from ansible_collections.progressive.delivery.plugins.module_utils.kube.store import DEPLOYMENTS
from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st
from ansible_collections.progressive.delivery.plugins.module_utils.release import workload as wl
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.canary_action import CanaryAction


class UpdateTarget(CanaryAction):
    """Change only the image and pod annotations of the target; nothing else in it, nothing marked."""

    def apply(self, rule: st.Rule) -> None:
        """Roll a new image or pod annotations into the target: the next detect sees a new revision."""
        params = self.params
        if not params.image and not params.pod_annotations:
            raise self.fail("action=update_target needs 'image' and/or 'pod_annotations'")
        self._read_target()

        def compute(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is None:
                raise self.fail("Deployment %s/%s disappeared: recreate it and re-run" % (self.ns, params.target_name))
            try:
                return wl.updated_target(current, params.image, params.container, params.pod_annotations)
            except wl.WorkloadError as exc:
                raise self.fail(str(exc)) from None

        # The target is the user's object: only its image and pod annotations are changed, nothing is marked.
        writes = self.changelog.writes  # a write that the API refused and was redone is not counted twice
        written = self.store.ensure(DEPLOYMENTS, "Deployment", params.target_name, compute, owned=False)
        if self.changelog.writes == writes:
            self.message = "Deployment %s/%s already runs this image and these annotations" % (self.ns, params.target_name)
        elif not self.check_mode:
            self.target = written
            self.message = "Deployment %s/%s updated" % (self.ns, params.target_name)
