# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # How the alerts of a Canary's spec.analysis.alerts reach their providers (docs/alerts.md).
    DOCUMENTATION = r"""
options:
  alert_providers:
    description:
      - With the plan's C(alerting) (docs/alerts.md), Flagger C(AlertProvider) manifests (flagger.app/v1beta1)
        the Canary's C(spec.analysis.alerts) refer to, as dicts or as YAML texts of one or more documents. A
        provider not given here is read from the cluster, as Flagger does. Its C(spec.secretRef) Secret is read
        from the cluster when an alert is sent.
      - Holds webhook addresses, which carry tokens; never shown.
    type: list
    elements: raw
  alert_validate_certs:
    description: Verify the TLS certificates of alert receivers (Slack, Teams, ...).
    type: bool
    default: true
  alert_ca_cert:
    description: CA bundle for alert receivers.
    type: path
  alert_timeout:
    description: Seconds to wait for an alert receiver to answer.
    type: float
    default: 5.0
"""
