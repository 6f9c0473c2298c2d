# The dashboard (services/dashboard), sourced by deploy/e2e.sh with the lab
# up: a fresh load's per-scenario results merge within 10 s of its start; a
# real headless Chromium loads http://127.0.0.1:8080/ and finds every
# service of the lab, every server with a non-zero rate (within 20 s: each
# look costs Chromium seconds on a loaded machine), and numbers that change
# between two looks; impairments PUT as the impair tool does show on the
# page. It leaves no impairment listed; its two load generators run a
# bounded round (60 s) and the teardown removes them.

dash=http://127.0.0.1:8080
chromium_flags=(--headless --disable-gpu --hide-scrollbars)
[ "$(id -u)" -eq 0 ] && chromium_flags+=(--no-sandbox)
# dash_dom: the page's DOM as Chromium drew it (the page stays loading,
# its event stream open, so Chromium dumps it when --timeout stops it). On
# a loaded machine Chromium may stop before the first state is drawn: then
# it looks again, for at most 90 s.
# Each look has a profile of its own: with the default one, a second
# Chromium (another look still exiting, anyone else's) hands the page to
# the first and exits at once.
dash_dom() { dash_until 'data-rounds="[1-9]' 90; }
# dash_until REGEX SECONDS: look until the drawn page matches REGEX (the
# state the page shows arrives with its next event), for at most SECONDS;
# prints the last look.
dash_until() {
  local dom="" profile t0
  t0=$(date +%s)
  while :; do
    profile=$(mktemp -d)
    dom=$(timeout 60 chromium "${chromium_flags[@]}" --user-data-dir="$profile" --timeout=6000 --dump-dom "$dash/" 2>/dev/null || true)
    rm -rf "$profile"
    if grep -q -- "$1" <<<"$dom"; then break; fi
    [ $(( $(date +%s) - t0 )) -ge "$2" ] && break
  done
  printf '%s\n' "$dom"
}
# dash_attr DOM NODE ATTR: the attribute of the node's card.
# (e2e.sh runs with set -e and pipefail: a pipeline that finds nothing
# must not end the run, hence the "|| true" after each.)
dash_attr() { { grep -o "data-node=\"$2\"[^>]*" <<<"$1" | grep -o "data-$3=\"[^\"]*\"" | head -1 | cut -d'"' -f2; } || true; }
# dash_get DOM REGEX FIELD: field FIELD (split on ") of the first match.
dash_get() { { grep -o "$2" <<<"$1" | head -1 | cut -d'"' -f"$3"; } || true; }
dash_cleanup() { curl -s -m 10 -X PUT --data '[]' "$dash/api/impairments" >/dev/null 2>&1 || true; }
trap 'dash_cleanup; teardown' EXIT

if ! command -v chromium >/dev/null || ! command -v curl >/dev/null; then
  fail "dashboard: chromium or curl is missing: run make deps"
else
  # Two generators with the whole mix of .env, for 60 s.
  LOADGEN_DURATION=60s timeout 120 docker compose up -d --quiet-build --scale loadgen=2 --force-recreate loadgen >/dev/null
  t_load=$(date +%s)
  report=""
  while :; do
    report=$(timeout 30 docker run --rm -v "${COMPOSE_PROJECT_NAME}_results:/results:ro" --entrypoint /app \
      socklab/loadgen:dev merge -since 5s /results 2>/dev/null || true)
    if grep -Eq '^ +tinytcp +[1-9][0-9]* +[1-9][0-9]* .*[0-9.]+(µs|ms|s) ' <<<"$report"; then break; fi
    [ $(( $(date +%s) - t_load )) -ge 10 ] && break
    sleep 1
  done
  elapsed=$(( $(date +%s) - t_load ))
  printf '%s\n' "$report" | tail -14
  expect "results: a per-scenario table ${elapsed}s after the load started" '^ +scenario +requests +successes +errors +tmo/lost +p50 +p90 +p99 +p99\.9 +max' "$report"
  expect "results: per-scenario latency rows within 10s" '^ +tinytcp +[1-9][0-9]* +[1-9][0-9]* .*[0-9.]+(µs|ms|s) ' "$report"

  # Every compose service is on the page (loadgen as its replicas), every
  # server with a non-zero rate, within 10 s.
  services=$(docker compose --profile capture config --services || true)
  t_page=$(date +%s)
  while :; do
    dom=$(dash_dom)
    zero=""
    for s in $services; do
      case $s in loadgen|capture|dashboard) continue ;; esac
      r=$(dash_attr "$dom" "$s" rate)
      awk -v r="${r:-0}" 'BEGIN { exit !(r > 0) }' || zero+=" $s(${r:-none})"
    done
    [ -z "$zero" ] && break
    # Each look takes Chromium some seconds itself.
    [ $(( $(date +%s) - t_page )) -ge 20 ] && break
  done
  for s in $services; do
    if [ "$s" = loadgen ]; then
      n=$({ grep -o 'data-kind="loadgen" data-up="true"' <<<"$dom" || true; } | wc -l)
      [ "$n" -eq 2 ] && pass "dashboard shows the 2 loadgen replicas" || fail "dashboard shows $n loadgen replicas up, want 2"
    else
      grep -q "data-node=\"$s\"" <<<"$dom" && pass "dashboard shows $s" || fail "dashboard does not show $s"
    fi
  done
  [ -z "$zero" ] && pass "every server has a non-zero rate on the page after $(( $(date +%s) - t_page ))s" || fail "servers without traffic on the page:$zero"
  expect "dashboard: per-scenario load rows" 'data-scenario="moviedb-get" data-requests="[1-9]' "$dom"
  expect "dashboard: the generators' asked rate" 'data-generator="[^"]*loadgen-1"' "$dom"

  # A second look: the numbers moved on.
  rounds1=$(dash_get "$dom" 'data-rounds="[0-9]*"' 2)
  req1=$(dash_get "$dom" 'data-scenario="tinytcp" data-requests="[0-9]*"' 4)
  # A look can take less than a scrape round (Chromium may dump the page as
  # served, before its event stream moves it on): look again until the
  # numbers move, for at most 20 s.
  t_look=$(date +%s)
  while :; do
    dom2=$(dash_dom)
    rounds2=$(dash_get "$dom2" 'data-rounds="[0-9]*"' 2)
    req2=$(dash_get "$dom2" 'data-scenario="tinytcp" data-requests="[0-9]*"' 4)
    if [ "${rounds2:-0}" -gt "${rounds1:-0}" ] && [ "${req2:-0}" -gt "${req1:-0}" ]; then break; fi
    [ $(( $(date +%s) - t_look )) -ge 20 ] && break
  done
  if [ "${rounds2:-0}" -gt "${rounds1:-0}" ] && [ "${req2:-0}" -gt "${req1:-0}" ]; then
    pass "dashboard: numbers change between two looks (round $rounds1 -> $rounds2, tinytcp requests $req1 -> $req2)"
  else
    fail "dashboard: the second look shows round ${rounds2:-?} (was ${rounds1:-?}), tinytcp requests ${req2:-?} (were ${req1:-?})"
  fi

  # The state as JSON, and the scrape round's time.
  state=$(curl -s -m 10 "$dash/api/state" || true)
  expect "GET /api/state: the map as JSON" '"name":"moviedb-3","service":"moviedb","kind":"server"' "$state"
  printf 'scrape: %s\n' "$(dash_get "$state" '"scrape":{[^}]*}' 1-)"
  printf 'state: %s bytes a round\n' "${#state}"

  # The impair tool's contract: the whole list in force, PUT as JSON.
  code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X PUT --data \
    '[{"service":"tinytcp","container":"socklab-e2e-tinytcp-1","loss_percent":5,"rate":"","delay":"40ms","jitter":"5ms","since":"2026-12-04T00:00:00Z"}]' \
    "$dash/api/impairments" || true)
  [ "$code" = 204 ] && pass "PUT /api/impairments: 204" || fail "PUT /api/impairments: $code"
  expect "the page shows the impairment on tinytcp" 'impaired: loss 5%, delay 40ms ±5ms' "$(dash_until 'impaired: loss 5%, delay 40ms ±5ms' 60)"
  code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X PUT --data '[{"service":"x","loss_percent":500}]' "$dash/api/impairments" || true)
  [ "$code" = 400 ] && pass "PUT /api/impairments refuses loss 500%" || fail "PUT of loss 500%: $code, want 400"
  dash_cleanup
  expect "impairments cleared" '"impairments":\{"updated":"[^"]*","list":\[\]\}' "$(curl -s -m 10 "$dash/api/state" || true)"
fi
trap teardown EXIT
