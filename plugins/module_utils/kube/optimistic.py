# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one read-change-write of the collection, with optimistic concurrency.

Read the object, let the caller compute what it should become, write it with the
``metadata.resourceVersion`` that was read, so that a concurrent writer makes the
write fail with ``409 Conflict`` instead of being overwritten; then read again
and recompute, a bounded number of times.  Check mode, diffs and messages stay
with the callers: ``write`` decides whether it really writes.
"""

from __future__ import annotations

from typing import Any, Callable

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.kube.errors import KubeApiError

CONFLICT_RETRIES = 5


class ConflictRetriesExhausted(DeliveryError):
    """Every write of a bounded read-change-write was refused with 409 Conflict."""

    def __init__(self, attempts: int, error: KubeApiError) -> None:
        super().__init__("%d writes in a row were refused with HTTP 409 Conflict" % attempts)
        self.attempts = attempts
        self.error = error


def with_resource_version(desired: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    """``desired`` carrying the ``resourceVersion`` of ``current`` (none for a create), changed in place."""
    metadata = desired.setdefault("metadata", {})
    if current is None:
        metadata.pop("resourceVersion", None)
    else:
        metadata["resourceVersion"] = (current.get("metadata") or {}).get("resourceVersion")
    return desired


def optimistic_update(read: Callable[[], dict[str, Any] | None],
                      change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
                      write: Callable[[dict[str, Any] | None, dict[str, Any]], dict[str, Any]],
                      attempts: int = CONFLICT_RETRIES,
                      before_retry: Callable[[int], None] | None = None) -> dict[str, Any] | None:
    """Bring one object to what ``change`` wants of it; return the written object.

    ``read()`` returns the object, or None when it does not exist. ``change(current)`` returns the
    object to write, or None to leave it as it is (then ``current`` is returned). ``write(current,
    desired)`` creates (``current`` is None) or replaces it and returns the server's answer; a
    :class:`KubeApiError` with status 409 from it means someone else wrote first, so the object is read
    and changed again, after ``before_retry(attempt)`` (the 0-based attempt that conflicted: a back-off,
    or undoing the bookkeeping of the refused write). When ``attempts`` writes in a row were refused,
    :class:`ConflictRetriesExhausted` is raised. Any other error propagates.
    """
    refused = 0
    while True:
        current = read()
        desired = change(current)
        if desired is None:
            return current
        try:
            return write(current, with_resource_version(desired, current))
        except KubeApiError as exc:
            if exc.status != 409:
                raise
            refused += 1
            if refused >= attempts:
                raise ConflictRetriesExhausted(refused, exc) from None
        if before_retry is not None:
            before_retry(refused - 1)
