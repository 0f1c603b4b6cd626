# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Credentials people put in URLs (``user:password@``, ``?token=...``), kept out of results and logs."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Shorter query values are rarely secrets, and masking them would garble
# unrelated text in the task result (Ansible masks every occurrence).
MIN_SECRET_QUERY_VALUE = 6


def redact_url(url: str) -> str:
    """The URL without user:password and with query values hidden, fit for results and messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        query = urlencode([(key, "***") for key, _value in parse_qsl(query, keep_blank_values=True)], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def url_secrets(url: str | None) -> set[str]:
    """Values of a URL that must never be shown: its password and its longer query values."""
    if not url:
        return set()
    try:
        parts = urlsplit(url)
    except ValueError:
        return {url}
    secrets = set()
    if parts.password:
        secrets.add(parts.password)
    for _key, value in parse_qsl(parts.query, keep_blank_values=False):
        if len(value) >= MIN_SECRET_QUERY_VALUE:
            secrets.add(value)
    return secrets


def hide_url_secrets(module, *option_names: str) -> None:
    """Register the secrets of these URL options with Ansible's masking, before anything is returned."""
    for option in option_names:
        module.no_log_values.update(url_secrets(module.params.get(option)))
