#!/usr/bin/env bash
# Run ansible-test from a copy of this repo laid out as .../ansible_collections/celery_ops/lean_results
# (ansible-test refuses symlinks), with a local stand-in for the get-pip script it would download.
# Usage: scripts/ansible-test.sh sanity [ansible-test args...]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
venv="${LEAN_RESULTS_VENV:-$repo/.venv}"
# Outside the repo: inside it, ansible-test would ask the outer git which files exist.
# One copy per checkout and venv, so runs from several clones (or several cores of
# `make test-matrix` next to `make sanity`) at once do not remove each other's files.
work="${TMPDIR:-/tmp}/lean_results-ansible-test-$(id -u)-$(printf %s "$repo:$venv" | md5sum | cut -c1-8)"
dest="$work/ansible_collections/celery_ops/lean_results"

rm -rf "$dest"
mkdir -p "$dest"
# A fresh copy of what git tracks plus untracked, not-ignored files: the collection as it will ship.
(cd "$repo" && git ls-files --cached --others --exclude-standard -z) |
  rsync -a --delete --ignore-missing-args --from0 --files-from=- "$repo/" "$dest/"

# ansible-test bootstraps pip with a script from a host that is not reachable here; give it a
# stand-in under the name it looks for (get_pip_<version>.py, the version pinned in its source).
pip_version=$(grep -ho "pip='[0-9.]*'" "$venv"/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py | head -1 | tr -dc '0-9.')
cache="$HOME/.ansible/test/cache"
mkdir -p "$cache"
cat > "$cache/get_pip_${pip_version//./_}.py" <<'PY'
# Stand-in for get-pip.py: ansible-test downloads it from a host these machines cannot reach.
import os
import subprocess
import sys

env = dict(os.environ)
env.pop("PIP_CONFIG_FILE", None)  # ensurepip sets it to /dev/null, which would hide the pip config
subprocess.check_call([sys.executable, "-m", "ensurepip"], env=env)
# get-pip's own flags mean nothing to "pip install".
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install"] + args, env=env)
PY

cd "$dest"
export PATH="$venv/bin:$PATH"
exec "$venv/bin/ansible-test" "$@"
