"""Every name a canary builds comes from release/names.py, spelled as Flagger spells it."""

from __future__ import annotations

from ansible_collections.progressive.delivery.plugins.module_utils.release import names


def test_object_names_follow_flagger():
    assert names.primary_name("backend") == "backend-primary"
    assert names.canary_name("backend") == "backend-canary"
    assert names.service_names("backend") == ("backend", "backend-primary", "backend-canary")


def test_names_of_the_objects_the_collection_keeps_per_canary():
    assert names.state_name("web") == "web-canary-state"
    assert names.lease_name("web") == "web-canary-lock"
    assert names.previous_secrets_name("web") == "web-canary-previous-secrets"
    assert names.match_route_name("web") == "web-canary-match"
