# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Credentials people put in URLs (``user:password@``, ``?token=...``) and in webhook metadata, kept out of results
and logs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Shorter query values are rarely secrets, and masking them would garble
# unrelated text in the task result (Ansible masks every occurrence).
MIN_SECRET_QUERY_VALUE = 6
# Words of a longer value (a header line) that are hidden on their own: tokens are long, header names are short.
MIN_SECRET_WORD = 16


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


def keep_readable(module, option: str, public: Iterable[str] = ()) -> None:
    """Unmask the values of a no_log dict option that cannot be credentials.

    Ansible hides every value of a no_log option wherever it appears in the result: a metadata value such as
    ``cmd`` would also hide the key ``cmd`` in a list of names, and a metadata ``namespace`` every canary name.
    Kept readable: values shorter than a credential, and values equal to the options named in ``public``, which
    the invocation shows anyway. A value another no_log option also holds stays hidden.
    """
    value = module.params.get(option)
    if not isinstance(value, Mapping):
        return
    shown = {str(module.params[name]) for name in public if module.params.get(name) not in (None, "")}
    readable = {str(item) for item in value.values()
                if isinstance(item, (str, int, float)) and not isinstance(item, bool)
                and (len(str(item)) < MIN_SECRET_QUERY_VALUE or str(item) in shown)}
    module.no_log_values.difference_update(readable - _other_secrets(module, option))


def _other_secrets(module, option: str) -> set[str]:
    """What other no_log options hide: a short value shared with them stays hidden."""
    found: set[str] = set()
    for name, spec in module.argument_spec.items():
        if name != option and spec.get("no_log"):
            found |= secret_strings(module.params.get(name), min_length=1)
    return found


def secret_strings(value: Any, min_length: int = MIN_SECRET_QUERY_VALUE) -> set[str]:
    """Every string (and number) inside a value that may be a secret: webhook metadata, headers, a provider's settings.

    Values shorter than ``min_length`` are left out: masking them would garble unrelated words of a message
    (``cmd``, ``bash``, a count), and they are too short to be credentials.
    """
    found: set[str] = set()
    if isinstance(value, Mapping):
        for item in value.values():
            found |= secret_strings(item, min_length)
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            found |= secret_strings(item, min_length)
    elif isinstance(value, str):
        if len(value) >= min_length:
            found.add(value)
            # A header line ("Authorization: Bearer <token>") may be echoed in parts: its token is long, its words
            # ("Authorization", "Bearer") are not secret and are kept readable.
            found |= {part for part in value.replace(":", " ").split() if len(part) >= MIN_SECRET_WORD and part != value}
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and len(str(value)) >= min_length:
        found.add(str(value))
    return found


def manifest_secrets(manifest: Any, templates: Iterable[Any] = ()) -> set[str]:
    """Secrets a Canary manifest and its MetricTemplates carry: webhook metadata values and credentials in URLs."""
    found: set[str] = set()
    spec = manifest.get("spec") if isinstance(manifest, Mapping) else None
    if isinstance(spec, Mapping):
        if isinstance(spec.get("metricsServer"), str):
            found |= url_secrets(spec["metricsServer"])
        analysis = spec.get("analysis") if isinstance(spec.get("analysis"), Mapping) else {}
        webhooks = analysis.get("webhooks")
        for hook in webhooks if isinstance(webhooks, list) else []:
            if not isinstance(hook, Mapping):
                continue
            found |= secret_strings(hook.get("metadata"))
            for key in ("url", "rollbackUrl"):
                if isinstance(hook.get(key), str):
                    found |= url_secrets(hook[key])
    for template in templates:
        provider = ((template.get("spec") or {}) if isinstance(template, Mapping) else {}).get("provider")
        if isinstance(provider, Mapping) and isinstance(provider.get("address"), str):
            found |= url_secrets(provider["address"])
    return found


def mask(text: str, secrets: Iterable[str]) -> str:
    """The text with every secret replaced, longest first so that a secret containing another is hidden whole."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "********")
    return text
