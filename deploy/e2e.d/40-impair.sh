# shellcheck shell=bash
# Impaired links (services/impair, make impair): with 10% loss on
# filestream its UDP streams lose packets and its TCP file arrives whole
# through retransmissions seen in a capture; at 2mbit a 1,000,000-character
# file takes about 4 s; with 100% loss connid's client times out, retries
# and gives up; every instance of a fleet is shaped; clearing restores the
# namespace exactly and nothing is lost any more.
#
# Sourced by deploy/e2e.sh with the lab up. It clears what it set on every
# exit path (its EXIT trap runs before e2e.sh's own teardown).

impair_bin=bin/impair
impair_clear_all() {
  local s
  for s in filestream connid moviedb; do timeout 60 "$impair_bin" clear "$s" >/dev/null 2>&1 || true; done
}
eval "set -- $(trap -p EXIT)"
impair_prev_trap=${3:-}
trap 'impair_rc=$?; impair_clear_all; (exit $impair_rc); eval "$impair_prev_trap"' EXIT

timeout 300 make -s impair-image >/dev/null

# impair_state: filestream's network namespace as the kernel sees it
# (links, qdiscs, every nftables rule, counters aside), to compare after a clear.
impair_fs_pid=$(docker inspect -f '{{.State.Pid}}' "$(docker compose ps -q filestream)")
impair_state() {
  nsenter -t "$impair_fs_pid" -n sh -c 'ip -o link | sed -E "s/^[0-9]+: //; s/ link-netnsid [0-9]+//"; tc qdisc show; nft list ruleset' 2>&1 |
    sed -E 's/counter packets [0-9]+ bytes [0-9]+/counter/'
}
impair_before=$(impair_state)

# impair_streams: UDP streams of 100 packets from a container on the lab
# network until 1,000 packets have been announced (a stream whose request
# was lost reports no packets and is tried again); prints "PACKETS LOST".
impair_streams() {
  local announced=0 lost=0 round out r t l
  for round in 1 2 3 4; do
    out=$(in_lab filestream filestream-client -protocol udp -server filestream:9001 -timeout 1s \
      -c "stream 2 100" -c "stream 2 100" -c "stream 2 100" -c "stream 2 100" -c "stream 2 100" \
      -c "stream 2 100" -c "stream 2 100" -c "stream 2 100" -c "stream 2 100" -c "stream 2 100" 2>&1 || true)
    while read -r r t l; do
      [ "$announced" -ge 1000 ] && break
      announced=$((announced + t)); lost=$((lost + l))
    done < <(sed -nE 's/.*packets ([0-9]+)\/([0-9]+), lost ([0-9]+).*/\1 \2 \3/p' <<<"$out")
    [ "$announced" -ge 1000 ] && break
  done
  echo "$announced $lost"
}

# impair_file_ms: a TCP file of 1,000,000 characters from a container on
# the lab network; prints the client's report line.
impair_file() {
  in_lab filestream filestream-client -protocol tcp -server filestream:9001 -timeout 10s -c 1000000 -c quit 2>&1 | grep '^file:' || true
}

step "impair: LOSS=10% on filestream"
out=$(run_ok "make impair SERVICE=filestream LOSS=10%" timeout 120 make -s impair SERVICE=filestream LOSS=10%)
expect "impair: filestream shaped" 'filestream-1: loss 10%, both directions' "$out"
out=$(timeout 120 "$impair_bin" list -json 2>&1 || true)
expect "impair list -json: filestream at 10%" '"loss_percent": 10,' "$out"
read -r impair_n impair_lost < <(impair_streams)
impair_pct=$(awk -v l="$impair_lost" -v n="$impair_n" 'BEGIN { if (n > 0) printf "%.1f", 100 * l / n; else print "-1" }')
echo "UDP streams: $impair_lost of $impair_n packets lost ($impair_pct%)"
if [ "$impair_n" -ge 1000 ] && awk -v p="$impair_pct" 'BEGIN { exit !(p >= 4 && p <= 20) }'; then
  pass "UDP streams at 10% loss: $impair_lost of $impair_n lost ($impair_pct%)"
else
  fail "UDP streams at 10% loss: $impair_lost of $impair_n lost ($impair_pct%), want 1000 packets and 4% to 20%"
fi
# The file crosses the bridge in a few dozen segmentation-offload frames, so
# a transfer that loses none of its data (about one in twenty) is possible:
# up to three transfers, each captured on its own, until one shows
# retransmissions; every one must arrive whole.
impair_rtx=0
for impair_try in 1 2 3; do
  impair_pcap=$capdir/impair-loss-$impair_try.pcap
  timeout 90 tshark -i socklab0 -f "tcp port 9001" -a duration:80 -w "$impair_pcap" >/dev/null 2>"$capdir/impair-tshark-$impair_try.log" &
  impair_tshark=$!
  for _ in $(seq 50); do grep -q 'Capturing on' "$capdir/impair-tshark-$impair_try.log" 2>/dev/null && break; sleep 0.2; done
  out=$(impair_file)
  echo "$out"
  expect "TCP file at 10% loss arrives whole, CRC correct (transfer $impair_try)" '^file: 1000000 bytes in .* ok$' "$out"
  kill -INT "$impair_tshark" 2>/dev/null || true
  wait "$impair_tshark" 2>/dev/null || true
  impair_rtx=$(tshark -r "$impair_pcap" -Y tcp.analysis.retransmission -T fields -e frame.number 2>/dev/null | wc -l)
  impair_frames=$(tshark -r "$impair_pcap" -T fields -e frame.number 2>/dev/null | wc -l)
  echo "transfer $impair_try: $impair_rtx retransmissions in $impair_frames captured frames"
  [ "$impair_rtx" -gt 0 ] && break
done
if [ "$impair_rtx" -gt 0 ]; then
  pass "capture of transfer $impair_try: $impair_rtx retransmissions in $impair_frames frames"
else
  fail "captures of 3 transfers: no tcp.analysis.retransmission"
fi

step "impair: RATE=2mbit on filestream"
out=$(run_ok "make impair SERVICE=filestream RATE=2mbit" timeout 120 make -s impair SERVICE=filestream RATE=2mbit)
expect "impair: filestream at 2mbit (the loss replaced)" 'filestream-1: rate 2mbit, both directions' "$out"
out=$(impair_file)
echo "$out"
impair_ms=$(sed -nE 's/^file: 1000000 bytes in ([0-9.]+)ms .* ok$/\1/p' <<<"$out")
if [ -n "$impair_ms" ] && awk -v ms="$impair_ms" 'BEGIN { exit !(ms >= 3500 && ms <= 6000) }'; then
  pass "TCP file of 1000000 at 2mbit: ${impair_ms}ms"
else
  fail "TCP file of 1000000 at 2mbit: '${out}', want whole in 3.5 s to 6 s"
fi

step "impair: LOSS=100% on connid"
out=$(run_ok "make impair SERVICE=connid LOSS=100%" timeout 120 make -s impair SERVICE=connid LOSS=100%)
impair_id="impair-$$-$RANDOM"
out=$(in_lab connid connid-client -timeout 1s -tries 3 -ids "$impair_id-b,$impair_id-c" HELLO connid 9002 "$impair_id-a" 2>&1 || true)
printf '%s\n' "$out" | sed 's/^/     | /'
expect "connid: Connection Error for the first ID" "^Connection Error $impair_id-a on " "$out"
expect "connid: Connection Error for the third ID" "Connection Error $impair_id-c on " "$out"
expect "connid: Connection Failure after 3 tries" '^Connection Failure on ' "$out"

step "impair: every instance of a fleet"
out=$(run_ok "impair set moviedb -loss 1%" timeout 120 "$impair_bin" set moviedb -loss 1%)
expect "impair: moviedb-3 shaped too" 'moviedb-3-1: loss 1%' "$out"
out=$(timeout 120 "$impair_bin" list 2>&1 || true)
printf '%s\n' "$out"
[ "$(grep -c '^moviedb' <<<"$out")" -eq 3 ] && pass "impair list: 3 moviedb instances" || fail "impair list: want 3 moviedb instances"

step "impair: clear"
run_ok "make impair SERVICE=filestream (clear)" timeout 120 make -s impair SERVICE=filestream >/dev/null
run_ok "make impair SERVICE=connid (clear)" timeout 120 make -s impair SERVICE=connid >/dev/null
run_ok "make impair SERVICE=moviedb (clear)" timeout 120 make -s impair SERVICE=moviedb >/dev/null
out=$(timeout 120 make -s impair 2>&1 || true)
expect "make impair: nothing in force" '^no impairment in force$' "$out"
impair_after=$(impair_state)
if [ "$impair_after" = "$impair_before" ]; then
  pass "filestream's namespace after clearing: links, qdiscs and nftables as before"
else
  fail "filestream's namespace after clearing differs:"; diff <(echo "$impair_before") <(echo "$impair_after") | sed 's/^/     | /'
fi
read -r impair_n impair_lost < <(impair_streams)
echo "UDP streams after clearing: $impair_lost of $impair_n packets lost"
[ "$impair_n" -ge 1000 ] && [ "$impair_lost" -eq 0 ] && pass "UDP streams after clearing: 0 of $impair_n lost" ||
  fail "UDP streams after clearing: $impair_lost of $impair_n lost, want 0 of 1000"

trap "$impair_prev_trap" EXIT
