# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Where the modules that write a canary's state push Flagger's release metrics.
    DOCUMENTATION = r"""
options:
  pushgateway_url:
    description:
      - Base URL of a Prometheus Pushgateway, for example C(http://pushgateway.monitoring:9091).
      - When set, every write of the canary's state pushes Flagger's series (C(flagger_canary_status),
        C(flagger_canary_weight), C(flagger_canary_total), C(flagger_canary_duration_seconds),
        C(flagger_canary_metric_analysis)) with one C(PUT) to the grouping key
        C(job=progressive-delivery), C(namespace), C(name) (the target), so each run replaces the previous run's
        series of the same canary. See C(docs/metrics.md).
      - A push that fails is a warning in the task's output; it never fails the release.
      - When not set, nothing is pushed.
    type: str
  pushgateway_token:
    description:
      - "Bearer token sent to the Pushgateway as C(Authorization: Bearer <token>), for a Pushgateway behind an
        authenticating proxy."
    type: str
  pushgateway_ca_cert:
    description:
      - Path to a CA bundle that verifies the Pushgateway's HTTPS certificate.
    type: path
  pushgateway_validate_certs:
    description:
      - Verify the Pushgateway's HTTPS certificate.
    type: bool
    default: true
  pushgateway_timeout:
    description:
      - Seconds to wait for the Pushgateway to answer one push.
    type: float
    default: 5.0
"""
