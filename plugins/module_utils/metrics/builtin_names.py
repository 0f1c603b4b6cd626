# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The names of Flagger's two built-in metrics, for code that needs the names and none of the code that measures them.

The report's charts import them: the report filter is loaded by every task that templates a filter of the
collection, and must not pull in the Prometheus client with them.
"""

from __future__ import annotations

SUCCESS_RATE = "request-success-rate"
DURATION = "request-duration"
