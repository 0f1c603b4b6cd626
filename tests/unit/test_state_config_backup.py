"""What a promotion keeps of the primary's ConfigMaps and Secrets so a rollback can put them back."""

from __future__ import annotations

import base64
import json

from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st
from ansible_collections.progressive.delivery.plugins.module_utils.release import workload as wl
from ansible_collections.progressive.delivery.plugins.module_utils.kube.ownership import ownership_problem
from ansible_collections.progressive.delivery.plugins.module_utils.release.names import previous_secrets_name


def configmap(data=None, binary=None):
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg-primary", "resourceVersion": "7"}}
    if data is not None:
        obj["data"] = data
    if binary is not None:
        obj["binaryData"] = binary
    return obj


def test_config_content_keeps_only_the_data():
    assert wl.config_content(configmap({"mode": "v1"}, {"blob": "AAE="})) == {"data": {"mode": "v1"}, "binaryData": {"blob": "AAE="}}
    assert wl.config_content(configmap()) == {}


def test_with_config_content_replaces_data_and_drops_what_the_saved_copy_lacked():
    current = configmap({"mode": "v2-bad", "new-key": "x"}, {"blob": "AAE="})
    restored = wl.with_config_content(current, {"data": {"mode": "v1-good"}})
    assert restored["data"] == {"mode": "v1-good"} and "binaryData" not in restored
    assert restored["metadata"] == current["metadata"], "resourceVersion stays for the optimistic write"
    assert current["data"]["mode"] == "v2-bad", "the input is not changed"
    assert wl.with_config_content(configmap({"mode": "v1-good"}), {"data": {"mode": "v1-good"}}) is None


def test_secret_backup_round_trips_and_is_ours():
    contents = {"db-primary": {"data": {"password": base64.b64encode(b"s3cret").decode()}}, "tls-primary": {}}
    backup = wl.config_backup_secret(previous_secrets_name("app"), contents, "prod", "app")
    assert backup["kind"] == "Secret" and backup["metadata"]["name"] == "app-canary-previous-secrets"
    assert ownership_problem(backup, "Secret", "prod", "app") is None
    assert sorted(backup["data"]) == ["db-primary", "tls-primary"]
    # Secret data must be base64, and nothing of the secret may be readable in the object as plain text.
    assert "s3cret" not in json.dumps(backup)
    assert wl.read_config_backup(backup) == contents


def test_unreadable_backup_entries_are_left_out():
    backup = {"data": {"good": base64.b64encode(b'{"data": {"k": "dg=="}}').decode(), "broken": "not base64!",
                       "list": base64.b64encode(b"[1]").decode()}}
    assert wl.read_config_backup(backup) == {"good": {"data": {"k": "dg=="}}}


def test_state_keeps_the_saved_configs_through_json():
    saved = {"configMaps": {"cfg-primary": {"data": {"mode": "v1-good"}}}, "secrets": ["db-primary"]}
    state = st.CanaryState(phase=st.PROMOTING, primary_configs_before_promotion=saved)
    text = st.dump_state(state)
    assert json.loads(text)["primaryConfigsBeforePromotion"] == saved
    assert st.parse_state(text, "here").primary_configs_before_promotion == saved
