# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a relative manifest or MetricTemplate path points."""

from __future__ import annotations

import os

from ansible.errors import AnsibleFilterError


def canary_path(path, playbook_dir):
    """The file a path names: as given when absolute; otherwise next to the playbook, else in the working directory.

    The playbook's directory comes first, as for Ansible's own file lookups. The directory ansible-playbook runs in
    comes next: an AWX job runs in its project's root, which is also where a playbook that imports the collection's
    own playbooks lives (``playbook_dir`` is then the collection's directory). When neither holds the file, the path
    is returned as given, for the error to name.
    """
    if not isinstance(path, str) or not path:
        raise AnsibleFilterError("canary_path: expected a file path, got %r" % (path,))
    path = os.path.expanduser(path)
    if os.path.isabs(path):
        return path
    if not isinstance(playbook_dir, str) or not playbook_dir:
        raise AnsibleFilterError("canary_path: pass playbook_dir, the directory relative paths are taken from")
    candidates = [os.path.normpath(os.path.join(playbook_dir, path)), os.path.normpath(os.path.join(os.getcwd(), path))]
    return next((candidate for candidate in candidates if os.path.isfile(candidate)), path)


class FilterModule:
    """Path filters."""

    def filters(self):
        return {"canary_path": canary_path}
