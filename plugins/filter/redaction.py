# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that show what ran without the credentials it carried."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.progressive.delivery.plugins.module_utils.redaction import redact_url


def redact_url_filter(url):
    if not isinstance(url, str):
        raise AnsibleFilterError("redact_url: expected a URL string, found %s" % type(url).__name__)
    return redact_url(url)


class FilterModule:
    """Redaction filters."""

    def filters(self):
        return {"redact_url": redact_url_filter}
