# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Prometheus connection options shared by every module that queries Prometheus.
    DOCUMENTATION = r"""
options:
  prometheus_url:
    description:
      - Base URL of the Prometheus HTTP API, including any path prefix, for example C(http://prometheus.istio-system:9090).
      - Falls back to E(PROMETHEUS_URL). One of the two is required.
      - Any Prometheus-compatible query API (Thanos, Cortex, Mimir, VictoriaMetrics) that serves C(/api/v1/query) works.
    type: str
  prometheus_token:
    description:
      - "Bearer token sent as C(Authorization: Bearer <token>). Falls back to E(PROMETHEUS_TOKEN)."
      - Mutually exclusive with O(prometheus_username).
    type: str
  prometheus_username:
    description:
      - User name for HTTP basic authentication. Requires O(prometheus_password).
    type: str
  prometheus_password:
    description:
      - Password for HTTP basic authentication.
    type: str
  prometheus_headers:
    description:
      - Extra HTTP headers sent with every query, for example a tenant header (C(X-Scope-OrgID)) or a proxy's own token.
      - The values are treated as secrets and never logged.
    type: dict
  prometheus_ca_cert:
    description:
      - Path to a CA bundle that signs the Prometheus server's certificate.
    type: path
  prometheus_client_cert:
    description:
      - Path to a client certificate for mutual TLS. Requires O(prometheus_client_key).
    type: path
  prometheus_client_key:
    description:
      - Path to the key of O(prometheus_client_cert).
    type: path
  prometheus_validate_certs:
    description:
      - Whether to verify the Prometheus server's TLS certificate. Only turn this off for a lab.
    type: bool
    default: true
  prometheus_timeout:
    description:
      - Seconds to wait for one query. Prometheus is asked to give up slightly earlier, so a slow query reports its own
        timeout.
      - A query that times out is a failed check, never a pass.
    type: float
    default: 10
requirements:
  - requests
notes:
  - Options can be set once for every module of the collection that queries Prometheus with
    C(module_defaults) on C(group/progressive.delivery.prometheus).
"""
