"""The canary role's task files: no file includes itself, directly or through others, and steps stay few tasks."""

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


def test_a_weight_step_is_at_most_a_few_tasks_and_no_module_process():
    steps = list(_tasks(yaml.safe_load((TASKS / "step.yml").read_text())))
    leaves = [task for task in steps if "block" not in task]
    assert len(leaves) <= 5
    modules = {key for task in leaves for key in task if key.startswith(("progressive.delivery.", "ansible.builtin."))}
    assert modules == {"progressive.delivery.canary_analysis", "ansible.builtin.set_fact"}


def test_no_suffix_literals_in_the_role():
    for path in TASKS.glob("*.yml"):
        text = path.read_text()
        assert "-primary" not in text and "-canary\"" not in text, path.name
