# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A webhook's response body as a short, printable line for results and messages."""

from __future__ import annotations

import html
import re

_HTML_HINT = re.compile(r"^\s*(<!doctype html|<html|<head|<body|<\?xml)", re.IGNORECASE)
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_HTML_DROP = re.compile(r"<(script|style|head)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_HTML_TAG = re.compile(r"<[^>]+>")
_WHITESPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def summarize_body(raw: bytes, content_type: str | None, max_body: int, total_length: int | None) -> tuple[str, bool]:
    """A short, printable rendering of a response body and whether it was cut.

    total_length is the body's full size when known; None means more was sent than was read.
    """
    incomplete = total_length is None or total_length > len(raw)
    size = f"{total_length} bytes in all" if total_length is not None else f"more than {len(raw)} bytes"
    if not raw:
        return "", False
    if b"\x00" in raw[:1024]:
        return f"<binary body, {size}>", False
    charset = "utf-8"
    match = re.search(r"charset=([\w.-]+)", content_type or "", re.IGNORECASE)
    if match:
        charset = match.group(1)
    try:
        text = raw.decode(charset, errors="replace")
    except LookupError:
        text = raw.decode("utf-8", errors="replace")
    if "html" in (content_type or "").lower() or _HTML_HINT.match(text):
        text = _html_to_text(text)
    text = _CONTROL.sub("", text).strip()
    if not incomplete and len(text) <= max_body:
        return text, False
    suffix = f" ... [cut, {size}]"
    return text[: max(max_body - len(suffix), 0)].rstrip() + suffix, True


def _html_to_text(text: str) -> str:
    title_match = _HTML_TITLE.search(text)
    title = _WHITESPACE.sub(" ", html.unescape(title_match.group(1))).strip() if title_match else ""
    stripped = _HTML_DROP.sub(" ", text)
    stripped = _WHITESPACE.sub(" ", html.unescape(_HTML_TAG.sub(" ", stripped))).strip()
    if title and not stripped.startswith(title):
        return f"HTML page '{title}': {stripped}" if stripped else f"HTML page '{title}'"
    return f"HTML page: {stripped}" if stripped else "HTML page without text"
