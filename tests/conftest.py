"""Make the checkout importable as the ``progressive.delivery`` collection for every test."""

from __future__ import annotations

import sys

from tests.support.modules import ensure_collection_layout

_collections = str(ensure_collection_layout())
if _collections not in sys.path:
    sys.path.insert(0, _collections)
