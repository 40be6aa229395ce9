#!/usr/bin/env bash
# Build the Redis/Valkey source tarballs of the server matrix once, into a cache outside the clone.
#
#   scripts/build-servers.sh [SERVERS_SRC]      (default: ../shared/servers next to the repository)
#
# Each tarball is built in ~/.cache/lean_results/servers/<sha256 of the tarball>/ with the flags
# the servers' README gives (make -j2 BUILD_TLS=yes MALLOC=libc); the binaries end in bin/.
# A finished build leaves a .built stamp, so later runs (and CI) reuse it. Prints one line per
# server: "<name> <path of its server binary>", which `make test-servers` reads.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
src=${1:-${SERVERS_SRC:-$here/../shared/servers}}
cache=${LEAN_RESULTS_SERVER_CACHE:-$HOME/.cache/lean_results/servers}
jobs=${BUILD_JOBS:-2}

[ -d "$src" ] || { echo "build-servers: no directory $src" >&2; exit 1; }
shopt -s nullglob
tarballs=("$src"/*.tar.gz)
[ ${#tarballs[@]} -gt 0 ] || { echo "build-servers: no *.tar.gz in $src" >&2; exit 1; }
mkdir -p "$cache"

for tarball in "${tarballs[@]}"; do
  name=$(basename "$tarball" .tar.gz)
  sum=$(sha256sum "$tarball" | cut -d' ' -f1)
  dest=$cache/$sum
  if [ ! -f "$dest/.built" ]; then
    # One builder at a time per tarball: a second caller waits for the first one's result.
    mkdir -p "$dest"
    exec 9>"$dest/.lock"
    flock 9
    if [ ! -f "$dest/.built" ]; then
      echo "build-servers: building $name into $dest" >&2
      rm -rf "$dest/src" "$dest/bin"
      mkdir -p "$dest/src" "$dest/bin"
      tar -xzf "$tarball" -C "$dest/src" --strip-components=1
      start=$(date +%s)
      make -C "$dest/src" -j"$jobs" BUILD_TLS=yes MALLOC=libc >"$dest/build.log" 2>&1 \
        || { echo "build-servers: $name failed, see $dest/build.log" >&2; exit 1; }
      for exe in "$dest"/src/src/{redis,valkey}-{server,cli,sentinel}; do
        if [ -x "$exe" ]; then cp "$exe" "$dest/bin/"; fi
      done
      echo "$name" >"$dest/name"
      echo "$(( $(date +%s) - start ))" >"$dest/build-seconds"
      rm -rf "$dest/src"
      touch "$dest/.built"
      echo "build-servers: $name built in $(cat "$dest/build-seconds")s" >&2
    fi
    exec 9>&-
  fi
  server=
  for exe in "$dest"/bin/valkey-server "$dest"/bin/redis-server; do
    if [ -x "$exe" ]; then server=$exe; break; fi
  done
  [ -n "$server" ] || { echo "build-servers: $name has no server binary in $dest/bin" >&2; exit 1; }
  echo "$name $server"
done
