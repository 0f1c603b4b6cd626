# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that read a release plan's strategy."""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.progressive.delivery.plugins.module_utils.release.strategy import Strategy


def canary_step_label(index, plan):
    if not isinstance(plan, Mapping) or "steps" not in plan:
        raise AnsibleFilterError("canary_step_label: pass the plan the progressive.delivery.canary_plan filter builds")
    try:
        return Strategy.from_plan(plan).label(int(index))
    except (TypeError, ValueError, IndexError) as error:
        raise AnsibleFilterError("canary_step_label: no step %r in the plan (%s)" % (index, error)) from error


class FilterModule:
    """Release strategy filters."""

    def filters(self):
        return {"canary_step_label": canary_step_label}
