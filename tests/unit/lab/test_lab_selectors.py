from __future__ import annotations

import pytest

from lab.kube.selectors import (SelectorError, fields_match, label_selector_matches, labels_match,
                                parse_field_selector, parse_label_selector)

LABELS = {"app": "web", "track": "canary", "example.com/tier": "front"}


@pytest.mark.parametrize("selector, matches", [
    ("app=web", True), ("app==web", True), ("app=db", False), ("app!=db", True), ("missing!=x", True),
    ("track in (canary,stable)", True), ("track notin (canary)", False), ("missing notin (a)", True),
    ("example.com/tier", True), ("!track", False), ("!missing", True), ("app=web,track=stable", False),
    ("app = web , track in ( canary )", True),
])
def test_label_selector_grammar(selector, matches):
    assert labels_match(parse_label_selector(selector), LABELS) is matches


@pytest.mark.parametrize("selector", ["app in (a", "=web", "app=we b", "app=,", "a b c", "app=-x"])
def test_unparseable_label_selectors(selector):
    with pytest.raises(SelectorError):
        parse_label_selector(selector)


def test_empty_label_value_matches_only_an_empty_label():
    assert not labels_match(parse_label_selector("app=="), LABELS)
    assert labels_match(parse_label_selector("app=="), {"app": ""})


def test_field_selectors():
    obj = {"metadata": {"name": "a", "namespace": "ns"}, "involvedObject": {"name": "web"}}
    assert fields_match(parse_field_selector("metadata.name=a,metadata.namespace==ns", "configmaps"), obj)
    assert not fields_match(parse_field_selector("metadata.name!=a", "configmaps"), obj)
    assert fields_match(parse_field_selector("involvedObject.name=web", "events"), obj)
    with pytest.raises(SelectorError):
        parse_field_selector("involvedObject.name=web", "configmaps")


def test_label_selector_objects():
    selector = {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "track", "operator": "In",
                                                                     "values": ["canary"]}]}
    assert label_selector_matches(selector, LABELS)
    assert not label_selector_matches({"matchExpressions": [{"key": "track", "operator": "DoesNotExist"}]}, LABELS)
    assert not label_selector_matches({"matchLabels": {"app": "db"}}, LABELS)
