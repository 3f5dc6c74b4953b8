#!/usr/bin/env bash
# sluice-base.sh start|stop|status|pid
#
# A second Sluice for before/after comparisons in one interleaved run: the
# binary SLUICE_BASE_BIN, or one built from the git revision SLUICE_BASE_REV
# (in a temporary worktree under BENCH_DIR, removed after the build). It runs
# exactly like sluice.sh (same configuration steps) with its own run dir
# BENCH_DIR/sluice-base and ports SLUICE_ADMIN_PORT+100 / SLUICE_DATA_PORT+100.
#   SLUICE_BASE_REV=HEAD~3 TARGETS="haproxy sluice-base sluice" scripts/bench/all.sh
# SLUICE_BASE_ENV adds environment to the base process only, so one binary
# can be compared with itself under other runtime settings:
#   SLUICE_BASE_BIN=bin/sluice SLUICE_BASE_ENV=GOMAXPROCS=1 TARGETS="sluice-base sluice" …
set -euo pipefail
BENCH_TAG=sluice-base
# shellcheck source=scripts/bench/common.sh
. "$(dirname "$0")/common.sh"

if [[ ${1:-} == start && -z ${SLUICE_BASE_BIN:-} ]]; then
  rev=${SLUICE_BASE_REV:-}
  [[ -n $rev ]] || bench_die "set SLUICE_BASE_BIN (a sluice binary) or SLUICE_BASE_REV (a git revision to build)"
  src=$BENCH_DIR/base-src
  mkdir -p "$BENCH_DIR"
  git -C "$REPO" worktree remove --force "$src" >/dev/null 2>&1 || rm -rf "$src"
  git -C "$REPO" worktree add --detach "$src" "$rev" >/dev/null 2>&1 || bench_die "git worktree add $rev failed"
  (cd "$src" && go build -o "$BENCH_DIR/sluice-base.bin" ./cmd/sluice) || { git -C "$REPO" worktree remove --force "$src"; bench_die "building $rev failed"; }
  git -C "$REPO" worktree remove --force "$src"
  bench_log "built $rev ($(git -C "$REPO" rev-parse --short "$rev")) as $BENCH_DIR/sluice-base.bin"
  SLUICE_BASE_BIN=$BENCH_DIR/sluice-base.bin
fi
SLUICE_VARIANT=base SLUICE_BASE_BIN=${SLUICE_BASE_BIN:-$BENCH_DIR/sluice-base.bin} exec "$(dirname "$0")/sluice.sh" "$@"
