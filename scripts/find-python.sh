#!/usr/bin/env bash
# Print the newest usable Python for `make test`: 3.13, else 3.12 (ansible-core 2.21 needs 3.12+),
# else 3.11 (ansible-core 2.19). pyenv's shims fail on these machines, so the real interpreters
# under ~/.pyenv/versions/ come first; every candidate must actually run.
#   scripts/find-python.sh [3.13 3.12 ...]     (the versions to try, newest first)
set -u
wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(3.13 3.12 3.11)
runs() { [ -x "$1" ] && "$1" -c 'import sys, venv' >/dev/null 2>&1; }
for version in "${wanted[@]}"; do
  for candidate in $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/python"$version" 2>/dev/null | sort -V -r) \
                   "$(command -v "python$version" 2>/dev/null)" "/usr/bin/python$version"; do
    if [ -n "$candidate" ] && runs "$candidate"; then echo "$candidate"; exit 0; fi
  done
done
echo "find-python: none of Python ${wanted[*]} runs here" >&2
exit 1
