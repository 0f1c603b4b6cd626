"""Relative manifest paths: next to the playbook first, then the working directory."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.progressive.delivery.plugins.filter.canary_paths import canary_path


@pytest.fixture
def layout(tmp_path, monkeypatch):
    playbooks, work = tmp_path / "project" / "playbooks", tmp_path / "work"
    playbooks.mkdir(parents=True)
    work.mkdir()
    monkeypatch.chdir(work)
    return playbooks, work


def test_a_file_next_to_the_playbook_wins_over_the_working_directory(layout):
    playbooks, work = layout
    (playbooks / "canary.yaml").write_text("a")
    (work / "canary.yaml").write_text("b")
    assert canary_path("canary.yaml", str(playbooks)) == str(playbooks / "canary.yaml")


def test_the_working_directory_is_the_fallback(layout):
    playbooks, work = layout
    (work / "canaries").mkdir()
    (work / "canaries" / "app.yaml").write_text("b")
    assert canary_path("canaries/app.yaml", str(playbooks)) == str(work / "canaries" / "app.yaml")


def test_a_missing_file_is_returned_as_given(layout):
    playbooks, _work = layout
    assert canary_path("../canaries/none.yaml", str(playbooks)) == "../canaries/none.yaml"


def test_absolute_and_home_paths_are_kept(layout, monkeypatch, tmp_path):
    playbooks, _work = layout
    monkeypatch.setenv("HOME", str(tmp_path))
    assert canary_path("/etc/hosts", str(playbooks)) == "/etc/hosts"
    assert canary_path("~/x.yaml", str(playbooks)) == str(tmp_path / "x.yaml")


@pytest.mark.parametrize("path, playbook_dir, message", [("", "/p", "expected a file path"), (None, "/p", "expected a file path"),
                                                         ("a.yaml", "", "pass playbook_dir")])
def test_bad_input_is_refused_clearly(path, playbook_dir, message):
    with pytest.raises(AnsibleFilterError, match=message):
        canary_path(path, playbook_dir)
