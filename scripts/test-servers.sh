#!/usr/bin/env bash
# The integration suite on every server of the matrix:
#
#   scripts/test-servers.sh [SERVERS_SRC]     (make test-servers SERVERS_SRC=DIR)
#
# Redis 6.2.16, Redis 7.2.6 and Valkey 8.0.1 are built once from the tarballs in SERVERS_SRC
# (scripts/build-servers.sh, cached under ~/.cache/lean_results/servers/<sha256>/); Debian's
# redis-server 7.0.15, the default of `make test`, is the fourth (TEST_SERVERS_DEFAULT=no leaves
# it out: .ci/run has just run the whole suite on it in `make test`). The tests start the
# binary named by LEAN_RESULTS_REDIS_SERVER.
#
# A server of the matrix whose tarball is missing, or that fails to build, fails the run: nothing
# is skipped silently. Which tests run on which server (the whole suite does not fit in CI's
# hour on 2 cores on all four) is the SUITE column below; SUITE_<name>=full widens one.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
src=${1:-${SERVERS_SRC:-$here/../shared/servers}}
venv=${LEAN_RESULTS_VENV:-$here/.venv}
workers=${PYTEST_WORKERS:-2}

# name (tarball without .tar.gz) | expected server and version | suite
MATRIX=(
  "redis-6.2.16|redis 6.2.16|core"
  "redis-7.2.6|redis 7.2.6|core"
  "valkey-8.0.1|valkey 8.0.1|core"
)
# core: what talks to Redis, on one server (no cluster, Sentinel or TLS topology; no Celery
# config rewriting, audit, role, demo or build, which do not depend on the server)
CORE_TESTS=(
  tests/integration/test_server_matrix.py
  tests/integration/test_redis_memory_module.py
  tests/integration/test_redis_memory_eviction_proof.py
  tests/integration/test_result_keys_info.py
  tests/integration/test_result_keys_wait_module.py
)
FULL_TESTS=(tests/integration)

results=()
status=0
run_suite() {  # name binary expected suite
  local name=$1 binary=$2 expected=$3 suite=$4 tests log start rc summary
  if [ -n "${TEST_SERVERS_TESTS:-}" ]; then
    read -r -a tests <<<"$TEST_SERVERS_TESTS"  # a chosen set of tests on every server, e.g. one file
  elif [ "$suite" = full ]; then tests=("${FULL_TESTS[@]}"); else tests=("${CORE_TESTS[@]}"); fi
  log=$(mktemp "${TMPDIR:-/tmp}/lean_results-servers-$name-XXXX.log")
  echo "== $name ($expected): ${suite} suite, ${#tests[@]} path(s), log $log"
  start=$(date +%s)
  set +e
  LEAN_RESULTS_REDIS_SERVER=$binary LEAN_RESULTS_EXPECT_SERVER=$expected \
    "$venv/bin/python" -m pytest -n "$workers" -p no:cacheprovider -q "${tests[@]}" 2>&1 | tee "$log" | tail -25
  rc=${PIPESTATUS[0]}
  set -e
  summary=$( (grep -E '(passed|failed|error).* in [0-9.]+s' "$log" || true) | tail -1 | tr -d '=' | sed 's/^ *//')
  results+=("$(printf '%-14s %-5s %5ss  %s' "$name" "$suite" "$(( $(date +%s) - start ))" "${summary:-no summary (rc $rc)}")")
  [ "$rc" = 0 ] || status=1
}

if [ "${TEST_SERVERS_DEFAULT:-yes}" != no ]; then
  debian=$(command -v redis-server || true)
  if [ -z "$debian" ]; then
    echo "test-servers: Debian's redis-server (the default server) is missing" >&2; status=1
    results+=("default        MISSING redis-server")
  else
    run_suite default "$debian" "redis 7.0" full
  fi
fi

missing=()
for entry in "${MATRIX[@]}"; do
  IFS='|' read -r name expected suite <<<"$entry"
  [ -f "$src/$name.tar.gz" ] || missing+=("$name")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test-servers: FAILED: no tarball for ${missing[*]} in $src (the matrix needs every server)" >&2
  status=1
  for name in "${missing[@]}"; do results+=("$(printf '%-14s MISSING (no %s.tar.gz in %s)' "$name" "$name" "$src")"); done
fi
if [ -f "$src/SHA256SUMS" ]; then
  (cd "$src" && sha256sum --check --quiet --ignore-missing SHA256SUMS) || { echo "test-servers: checksum mismatch in $src" >&2; exit 1; }
fi

start=$(date +%s)
built=$(scripts/build-servers.sh "$src") || { echo "test-servers: a server failed to build" >&2; status=1; built=; }
echo "test-servers: servers ready in $(( $(date +%s) - start ))s"
for entry in "${MATRIX[@]}"; do
  IFS='|' read -r name expected suite <<<"$entry"
  binary=$(awk -v n="$name" '$1 == n {print $2}' <<<"$built")
  [ -n "$binary" ] || continue  # reported as missing above
  suite_override=SUITE_${name//[.-]/_}
  run_suite "$name" "$binary" "$expected" "${!suite_override:-$suite}"
done

echo
echo "test-servers summary (core suite: ${CORE_TESTS[*]##*/})"
printf '  %s\n' "${results[@]}"
exit $status
