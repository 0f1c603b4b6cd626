# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Escaping for text that lands in the HTML report, from metric names to webhook messages."""

from __future__ import annotations

import html
import re

# Characters XML forbids (and HTML parsers replace): a stray NUL from a webhook
# body must not make the page unreadable for strict parsers.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def escape(text: object) -> str:
    """Text safe inside an element or a double-quoted attribute."""
    return html.escape(_FORBIDDEN.sub("\ufffd", str(text)), quote=True)
