from __future__ import annotations

import pytest

from lab.kube.patch import PatchError, builtin_merge_key, json_patch, merge_patch, strategic_merge_patch


def deployment_key(path):
    return builtin_merge_key(path, "deployments")


def test_merge_patch_follows_rfc7386():
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "list": [1, 2]}
    patched = merge_patch(target, {"a": "z", "c": {"f": None}, "list": [3], "new": {"x": 1}})
    assert patched == {"a": "z", "c": {"d": "e"}, "list": [3], "new": {"x": 1}}
    assert target["c"] == {"d": "e", "f": "g"}, "the target must not be modified in place"


def test_json_patch_add_to_array_end_and_index():
    assert json_patch({"l": [1, 3]}, [{"op": "add", "path": "/l/1", "value": 2},
                                      {"op": "add", "path": "/l/-", "value": 4}]) == {"l": [1, 2, 3, 4]}


def test_json_patch_escaped_pointer_tokens():
    assert json_patch({"a/b": {"~c": 1}}, [{"op": "replace", "path": "/a~1b/~0c", "value": 2}]) == {"a/b": {"~c": 2}}


@pytest.mark.parametrize("operations, malformed", [
    ([{"op": "test", "path": "/a", "value": 2}], False),
    ([{"op": "remove", "path": "/missing"}], False),
    ([{"op": "replace", "path": "/missing", "value": 1}], False),
    ([{"op": "add", "path": "/l/5", "value": 1}], False),
    ([{"op": "frobnicate", "path": "/a"}], True),
    ([{"op": "add", "path": "a", "value": 1}], True),
    ({"op": "add"}, True),
])
def test_json_patch_errors(operations, malformed):
    with pytest.raises(PatchError) as caught:
        json_patch({"a": 1, "l": []}, operations)
    assert caught.value.malformed is malformed


def test_json_patch_is_atomic_on_failure():
    target = {"a": 1}
    with pytest.raises(PatchError):
        json_patch(target, [{"op": "replace", "path": "/a", "value": 2}, {"op": "test", "path": "/a", "value": 1}])
    assert target == {"a": 1}


def test_strategic_merge_merges_named_lists_and_keeps_order():
    target = {"spec": {"containers": [{"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
                                      {"name": "b", "image": "b:1"}]}}
    patched = strategic_merge_patch(target, {"spec": {"containers": [
        {"name": "a", "env": [{"name": "Y", "value": "2"}]}, {"name": "c", "image": "c:1"}]}}, deployment_key)
    assert [c["name"] for c in patched["spec"]["containers"]] == ["a", "b", "c"]
    assert patched["spec"]["containers"][0] == {"name": "a", "image": "a:1",
                                                "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]}


def test_strategic_merge_directives():
    target = {"spec": {"volumes": [{"name": "a"}, {"name": "b"}], "nodeSelector": {"x": "1", "y": "2"},
                       "args": ["--a"]}}
    patched = strategic_merge_patch(target, {"spec": {
        "volumes": [{"name": "a", "$patch": "delete"}],
        "nodeSelector": {"$patch": "replace", "z": "3"},
        "args": ["--b"],
        "$setElementOrder/volumes": [{"name": "b"}],
    }}, deployment_key)
    assert patched["spec"] == {"volumes": [{"name": "b"}], "nodeSelector": {"z": "3"}, "args": ["--b"]}


def test_strategic_merge_requires_the_merge_key():
    with pytest.raises(PatchError) as caught:
        strategic_merge_patch({"spec": {"containers": []}}, {"spec": {"containers": [{"image": "x"}]}}, deployment_key)
    assert caught.value.malformed


@pytest.mark.parametrize("path, resource, key", [
    (("spec", "ports"), "services", "port"),
    (("spec", "template", "spec", "containers", "ports"), "deployments", "containerPort"),
    (("spec", "template", "spec", "containers", "volumeMounts"), "deployments", "mountPath"),
    (("status", "conditions"), "deployments", "type"),
    (("spec", "template", "spec", "tolerations"), "deployments", None),
])
def test_builtin_merge_keys(path, resource, key):
    assert builtin_merge_key(path, resource) == key
