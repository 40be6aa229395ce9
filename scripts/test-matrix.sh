#!/usr/bin/env bash
# unit tests, ansible-test sanity and a short module/role smoke test on every supported
# ansible-core, each in its own venv built from requirements/core-<core>.txt (requirements/test.txt
# with that core pinned):
#
#   scripts/test-matrix.sh [CORE ...]          (default: 2.19 2.20 2.21; make test-matrix)
#
# The venvs live outside the clone, in ~/.cache/lean_results/venvs/<core>-<hash>, the hash taken
# over the requirement files and the Python version, so a later run (or another clone) reuses
# them and a change of requirements builds a fresh one. redis-py: 4.6 (the lowest supported) with
# 2.19, 8.x with 2.21.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
cores=("$@")
[ ${#cores[@]} -gt 0 ] || cores=(2.19 2.20 2.21)
cache=${LEAN_RESULTS_VENV_CACHE:-$HOME/.cache/lean_results/venvs}

# The Python each core runs on: 2.19 on 3.11 (the oldest controller Python we test), 2.20 on
# 3.12, 2.21 on the newest (3.13, else 3.12).
python_for() {
  case $1 in
    2.19) scripts/find-python.sh 3.11 ;;
    2.20) scripts/find-python.sh 3.12 3.13 ;;
    *) scripts/find-python.sh 3.13 3.12 ;;
  esac
}

# The smoke test: each Redis-facing module once on a real server, celery_config once, and the
# role's config phase (real ansible-playbook runs).
SMOKE=(
  "tests/integration/test_server_matrix.py::test_the_modules_version_decisions_match_what_the_server_can_do"
  "tests/integration/test_result_keys_info.py::test_counts_ttls_memory_and_broker_keys"
  "tests/integration/test_redis_memory_module.py::test_minimal_acl_rule_from_the_docs_is_enough"
  "tests/integration/test_result_keys_wait_module.py::test_check_mode_changes_nothing"
  "tests/integration/test_celery_config_module.py::test_four_runs_check_apply_check_apply"
  "tests/integration/test_fleet_config_phase.py"
)

results=()
status=0
for core in "${cores[@]}"; do
  requirements=requirements/core-$core.txt
  [ -f "$requirements" ] || { echo "test-matrix: no $requirements" >&2; exit 1; }
  python=$(python_for "$core")
  pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  hash=$(cat requirements/test.txt "$requirements" <(echo "$pyver") | sha256sum | cut -c1-12)
  venv=$cache/$core-$hash
  started=$(date +%s)
  if [ ! -f "$venv/.installed" ]; then
    echo "== ansible-core $core: creating $venv (Python $pyver)"
    rm -rf "$venv"
    mkdir -p "$cache"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    touch "$venv/.installed"
  fi
  created=$(( $(date +%s) - started ))
  versions=$("$venv/bin/python" -c 'import ansible, platform, redis, celery; print("ansible-core %s, Python %s, redis-py %s, Celery %s" % (ansible.__version__, platform.python_version(), redis.__version__, celery.__version__))')
  echo "== ansible-core $core: $versions ($venv)"
  for step in unit sanity smoke; do
    step_start=$(date +%s)
    set +e
    case $step in
      unit) "$venv/bin/python" -m pytest -n "${PYTEST_WORKERS:-2}" -p no:cacheprovider -q tests/unit ;;
      sanity) LEAN_RESULTS_VENV=$venv scripts/ansible-test.sh sanity --venv --python "$pyver" ;;
      smoke) "$venv/bin/python" -m pytest -n "${PYTEST_WORKERS:-2}" -p no:cacheprovider -q "${SMOKE[@]}" ;;
    esac
    rc=$?
    set -e
    verdict=passed
    [ $rc = 0 ] || { verdict="FAILED (rc $rc)"; status=1; }
    results+=("$(printf '%-5s %-7s %-16s %4ss  %s' "$core" "$step" "$verdict" "$(( $(date +%s) - step_start ))" "$versions")")
  done
  results+=("$(printf '%-5s venv    %4ss to create (0 when cached)' "$core" "$created")")
done
echo
echo "test-matrix summary"
printf '  %s\n' "${results[@]}"
exit $status
