"""The canary role's task files: no file includes itself, directly or through others, and the release is one task."""

from __future__ import annotations

import pathlib

import yaml

TASKS = pathlib.Path(__file__).resolve().parents[2] / "roles" / "canary" / "tasks"
INCLUDES = ("ansible.builtin.include_tasks", "ansible.builtin.import_tasks", "include_tasks", "import_tasks")


def _tasks(items):
    for task in items or []:
        yield task
        for key in ("block", "rescue", "always"):
            yield from _tasks(task.get(key))


def include_graph() -> dict[str, set[str]]:
    graph = {}
    for path in sorted(TASKS.glob("*.yml")):
        included = set()
        for task in _tasks(yaml.safe_load(path.read_text())):
            for key in INCLUDES:
                if key in task:
                    target = task[key]
                    included.add(target if isinstance(target, str) else target.get("file"))
        graph[path.name] = included
    return graph


def test_no_task_file_includes_itself_directly_or_indirectly():
    graph = include_graph()
    assert all(target in graph for targets in graph.values() for target in targets), graph

    def reaches(start: str, goal: str, seen: frozenset = frozenset()) -> bool:
        return any(nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})) for nxt in graph[start])

    looping = [name for name in graph if reaches(name, name)]
    assert looping == [], "task files that include themselves: %s" % looping


def test_the_whole_release_is_one_task_with_no_loop_over_the_steps():
    tasks = [task for path in TASKS.glob("*.yml") for task in _tasks(yaml.safe_load(path.read_text()))]
    releases = [task for task in tasks if task.get("progressive.delivery.canary_analysis", {}).get("stage") in ("run", "release", "step")]
    assert [task["progressive.delivery.canary_analysis"]["stage"] for task in releases] == ["run"]
    assert not any(key in releases[0] for key in ("loop", "with_items", "until"))
    # The start, the promotion and the rollback are part of it: no task of the role starts, promotes or rolls back.
    actions = {task.get("progressive.delivery.canary_step", {}).get("action") for task in tasks}
    assert not actions & {"start", "promote", "finalize"}, actions
    for task in tasks:
        assert "_canary_plan.steps" not in str(task.get("loop", "")), "%s loops over the steps" % task["name"]


def test_no_suffix_literals_in_the_role():
    for path in TASKS.glob("*.yml"):
        text = path.read_text()
        assert "-primary" not in text and "-canary\"" not in text, path.name
