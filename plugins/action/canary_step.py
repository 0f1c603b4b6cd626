# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""progressive.delivery.canary_step in the controller's process when the task runs on the controller anyway.

A release runs canary_step about ten times; as a module each call starts Python and imports the Kubernetes client
again. With ``connection: local`` the controller is the host, so the same code runs here instead, with the same
options, checks, results and errors. Elsewhere (a bastion host, an ``environment:`` for the task, no Kubernetes
client on the controller) the module runs on the host as usual.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.parameters import remove_values
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.kube.client import HAS_KUBERNETES, client_from_auth, resolve_auth
from ansible_collections.progressive.delivery.plugins.module_utils.kube.errors import KubeApiError
from ansible_collections.progressive.delivery.plugins.module_utils.release.step_task import argument_spec, check_options, run_step

display = Display()


def say_decision(result: dict[str, Any]) -> None:
    """Print prepare's decision line, wherever the call ran: the role prints no decision of its own."""
    decision = result.get("decision")
    if isinstance(decision, dict) and decision.get("message"):
        display.display(str(decision["message"]))


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = True

    def _runs_here(self) -> bool:
        return (HAS_KUBERNETES and getattr(self._connection, "transport", None) == "local"
                and not any(self._task.environment or ()) and not self._task.async_val)

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        del tmp
        if not self._runs_here():
            result.update(self._execute_module(module_name="progressive.delivery.canary_step", task_vars=task_vars))
            say_decision(result)
            return result
        validation, args = self.validate_argument_spec(argument_spec=argument_spec())
        secrets = validation._no_log_values  # pylint: disable=protected-access
        try:
            check_options(args)
            client = client_from_auth(resolve_auth(args))
        except (DeliveryError, KubeApiError) as error:
            raise AnsibleActionFail(remove_values(error.message, secrets)) from None
        # Here a watch (action=status, watch=true) prints each change as it comes; as a module it returns them.
        outcome = run_step(args, client, bool(self._task.check_mode), bool(self._task.diff),
                           say=lambda line: display.display(remove_values(line, secrets)))
        result.update(outcome.result)
        if outcome.warnings:
            result["warnings"] = list(outcome.warnings)
        if outcome.failure is not None:
            result.update(failed=True, msg=outcome.failure)
        result = remove_values(result, secrets)
        say_decision(result)
        return result
