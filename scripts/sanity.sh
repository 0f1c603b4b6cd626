#!/usr/bin/env bash
# Run `ansible-test sanity` on exactly what the collection ships: build the
# tarball, unpack it under ansible_collections/progressive/delivery in a fresh
# temporary tree (so parallel runs never collide), and test there.
# Usage: scripts/sanity.sh [ansible-test sanity args, e.g. --test pylint or file paths]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
venv_bin=${VENV_BIN:-$repo/.venv/bin}
work=$(mktemp -d "${TMPDIR:-/tmp}/pd-sanity.XXXXXX")
trap 'rm -rf "$work"' EXIT

# ansible-test bootstraps pip in its per-test virtualenvs with a script it
# downloads from a host outside the package registries; give it one that uses
# the bundled pip and PyPI instead.
pip_version=$("$venv_bin/python" -c 'import re, pathlib, ansible_test
text = (pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py").read_text()
print(re.search(r"pip=.([0-9.]+).", text).group(1))')
if [ -n "$pip_version" ]; then
  mkdir -p "$HOME/.ansible/test/cache"
  cp "$repo/scripts/get_pip_offline.py" "$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
fi

"$venv_bin/ansible-galaxy" collection build --force --output-path "$work" "$repo" >/dev/null
target="$work/ansible_collections/progressive/delivery"
mkdir -p "$target"
tar -xzf "$work"/progressive-delivery-*.tar.gz -C "$target"
mkdir -p "$target/tests"
cp "$repo/tests/config.yml" "$target/tests/config.yml"
[ -f "$repo/tests/sanity/ignore-2.19.txt" ] && mkdir -p "$target/tests/sanity" && cp "$repo/tests/sanity/"ignore-*.txt "$target/tests/sanity/"

cd "$target"
# ansible-test keeps its per-test virtualenvs in one shared cache; concurrent
# runs would build the same one at once, so they take turns.
mkdir -p "$HOME/.ansible/test"
exec 9>"$HOME/.ansible/test/progressive-delivery-sanity.lock"
flock 9
PATH="$venv_bin:$PATH" "$venv_bin/ansible-test" sanity --local --python 3.11 --color no \
  --skip-test shellcheck "$@"
