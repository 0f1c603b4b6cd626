# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The root of the collection's errors, as kubernetes.core's ``CoreException`` is of its own.

Every error a task can end with derives from :class:`DeliveryError`, so a module
catches one class and fails with ``module.fail_json(msg=error.message, **error.result)``.
``KubeApiError`` is not one of them: it is what the API server said, and the code
that knows which object it was about turns it into a sentence (``explain``) and
raises a ``DeliveryError`` with it.
"""

from __future__ import annotations

from typing import Any


class DeliveryError(Exception):
    """A failure explained for a person; ``result`` holds what the failed task still returns."""

    def __init__(self, message: str = "", result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.result: dict[str, Any] = dict(result or {})
