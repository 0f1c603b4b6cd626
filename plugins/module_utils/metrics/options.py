# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus connection options (the ``prometheus`` action group), apart from the HTTP client."""

from __future__ import annotations

from typing import Any

# Every name carries the prometheus_ prefix, so a play that sets both groups'
# module_defaults never confuses them with the cluster's validate_certs/ca_cert.
PROMETHEUS_ARG_SPEC: dict[str, dict[str, Any]] = {
    "prometheus_url": {"type": "str"},
    "prometheus_token": {"type": "str", "no_log": True},
    "prometheus_username": {"type": "str"},
    "prometheus_password": {"type": "str", "no_log": True},
    "prometheus_headers": {"type": "dict", "no_log": True},
    "prometheus_ca_cert": {"type": "path"},
    "prometheus_client_cert": {"type": "path"},
    "prometheus_client_key": {"type": "path", "no_log": False},
    "prometheus_validate_certs": {"type": "bool", "default": True},
    "prometheus_timeout": {"type": "float", "default": 10.0},
}

# The ``sequential`` option of prometheus_gate and canary_analysis (see metrics/sequential_judge.SequentialSettings).
SEQUENTIAL_ARG_SPEC: dict[str, Any] = {
    "type": "dict",
    "options": {
        "alpha": {"type": "float", "default": 0.01},
        "tolerance": {"type": "float", "default": 0.0},
        "min_effect": {"type": "float", "default": 0.1},
        "min_requests": {"type": "int", "default": 10},
        "state": {"type": "dict"},
    },
}
