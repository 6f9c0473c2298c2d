#!/usr/bin/env bash
# stress: looks for tests that pass alone but fail on a loaded machine, as
# CI's may be. For every package of every module (or those whose import
# path matches PKGS), it builds the race-enabled test binary once and runs
# COPIES copies of it at once, each -count=COUNT at -cpu 1,2; it prints
# each failing copy's failures and ends with a summary. Not part of check:
# with the defaults it took 20 to 30 minutes on 2 cores here.
#
#   COPIES=3 COUNT=4 PKGS=filestream deploy/stress.sh
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
COPIES=${COPIES:-3}
COUNT=${COUNT:-4}
PKGS=${PKGS:-.}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pkgs=0
failed=()
for m in $($GO list -m -f '{{.Dir}}'); do
  for p in $(cd "$m" && $GO list ./... | grep -E -- "$PKGS" || true); do
    bin="$work/$(basename "$p").test"
    (cd "$m" && $GO test -c -race -o "$bin" "$p" >/dev/null) || { failed+=("$p (build)"); continue; }
    [ -f "$bin" ] || continue # no test files
    dir=$(cd "$m" && $GO list -f '{{.Dir}}' "$p")
    pkgs=$((pkgs + 1))
    for i in $(seq "$COPIES"); do
      (cd "$dir" && timeout 900 "$bin" -test.count="$COUNT" -test.cpu 1,2 >"$work/$i.log" 2>&1; echo "rc=$?" >>"$work/$i.log") &
    done
    wait
    for i in $(seq "$COPIES"); do
      if ! grep -q '^rc=0$' "$work/$i.log"; then
        failed+=("$p (copy $i)")
        echo "FAIL $p (copy $i of $COPIES):"
        grep -E -- '^(--- FAIL|panic:)|_test\.go:[0-9]+:|^rc=' "$work/$i.log" | head -20 | sed 's/^/    /'
      fi
    done
    rm -f "$bin"
    echo "stress: $p"
  done
done
echo "stress: $pkgs packages, $COPIES copies at once, -count=$COUNT -cpu 1,2: ${#failed[@]} failed${failed[*]:+: ${failed[*]}}"
[ ${#failed[@]} -eq 0 ]
