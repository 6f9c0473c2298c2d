# shellcheck shell=bash
# Sourced by deploy/e2e.sh with the lab up: records a few seconds of the
# load generators' default mix on the lab bridge with tshark, then reads it
# with the socklab dissectors (deploy/wireshark/plugins, installed into a
# HOME of its own, as make wireshark would) and checks that every frame with
# payload on a lab port decodes as its socklab protocol (none left as data),
# that none is malformed, that each of the five protocols was seen, and that
# tshark reports no Lua error. Segments of connections that began before the
# recording (no SYN in it) and retransmissions are left out: their bytes
# cannot be framed. Leaves the lab as it found it: the load generator it
# starts runs one bounded round and stops, and so does the recording.

ws_dir="$capdir/wireshark"
ws_home="$ws_dir/home"
ws_pcap="$ws_dir/mix.pcap"
ws_err="$ws_dir/tshark.stderr"
mkdir -p "$ws_home/.local/lib/wireshark/plugins/socklab"
cp deploy/wireshark/plugins/*.lua "$ws_home/.local/lib/wireshark/plugins/socklab/"
: >"$ws_err"
# ws_tshark ARGS...: tshark with the socklab plugins, stderr collected.
# Segments a busy bridge delivers out of order are put back in order for
# reassembly, as Wireshark can (a preference, off by default).
ws_tshark() { HOME="$ws_home" XDG_CONFIG_HOME="$ws_home/.config" timeout 180 tshark -o tcp.reassemble_out_of_order:TRUE "$@" 2>>"$ws_err"; }

# The lab's ports, from the generated port table (itself from the lab map).
ws_ports() { grep -o "$1 = [0-9][0-9]*" deploy/wireshark/plugins/socklab_ports.lua | awk '{print $3}' | sort -un; }
# ws_any FIELD PORTS...: a display filter "FIELD == P1 || FIELD == P2 ..."
# (no set syntax: its separator changed between Wireshark 4.0 and 4.2).
ws_any() { local f=$1; shift; local p out=""; for p in "$@"; do out="${out:+$out || }$f == $p"; done; printf '%s' "$out"; }
ws_tcp_ports=$(ws_ports tcp | paste -sd' ')
ws_udp_ports=$(ws_ports udp | paste -sd' ')
ws_protos="autoreply || tinytcp || filestream || connid || moviedb"

# tshark records the bridge on every port (the core sets CAPTURE_FILTER to
# TinyTCP only, which is why this records with tshark itself) while one
# round of the default mix runs, somewhat busier than the core's; it starts
# first and stops after the round, so the connections are whole.
timeout 120 tshark -i socklab0 -a duration:90 -w "$ws_pcap" -q 2>"$ws_dir/capture.stderr" &
ws_cap=$!
for _ in $(seq 200); do grep -q "Capturing on" "$ws_dir/capture.stderr" && break; sleep 0.1; done
LOADGEN_DURATION=6s LOADGEN_RATE=300 timeout 120 docker compose up -d --quiet-build --no-deps --scale loadgen=1 --force-recreate loadgen >/dev/null
ws_ids=$(docker compose ps -q -a loadgen)
# shellcheck disable=SC2086
timeout 90 docker wait $ws_ids >/dev/null || fail "wireshark: the load generator did not finish its round"
kill -INT "$ws_cap" 2>/dev/null || true
wait "$ws_cap" || true

if [ ! -s "$ws_pcap" ]; then
  fail "wireshark: tshark recorded nothing on socklab0"
  awk 'NR <= 20 {print "     | " $0}' "$ws_dir/capture.stderr"
else
  ws_total=$(ws_tshark -r "$ws_pcap" -T fields -e frame.number | wc -l)
  # TCP streams whose start is in the recording, less those with bytes
  # the recording lacks (a segment not captured).
  ws_tshark -r "$ws_pcap" -Y "tcp.analysis.lost_segment || tcp.analysis.ack_lost_segment" -T fields -e tcp.stream | sort -u >"$ws_dir/holes"
  ws_tshark -r "$ws_pcap" -Y "tcp.flags.syn == 1 && tcp.flags.ack == 0" -T fields -e tcp.stream | sort -u |
    comm -23 - "$ws_dir/holes" >"$ws_dir/whole"
  printf '%s TCP streams begin in the recording; %s streams with segments not captured are left out\n' \
    "$(wc -l <"$ws_dir/whole")" "$(wc -l <"$ws_dir/holes")"
  # ws_keep: rows (tcp.stream first) of UDP frames and of whole TCP streams.
  ws_keep() { awk -F'\t' 'FILENAME == ARGV[1] {whole[$1]=1; next} $1=="" || ($1 in whole)' "$ws_dir/whole" -; }
  # shellcheck disable=SC2086
  ws_onports="($(ws_any tcp.port $ws_tcp_ports) || $(ws_any udp.port $ws_udp_ports))"
  ws_payload="((tcp.len > 0 && !tcp.reassembled_in && !tcp.analysis.retransmission && !tcp.analysis.spurious_retransmission) || (udp && udp.length > 8))"
  ws_lab=$(ws_tshark -r "$ws_pcap" -2 -Y "$ws_payload && $ws_onports" -T fields -e tcp.stream | ws_keep | wc -l)
  ws_left=$(ws_tshark -r "$ws_pcap" -2 -Y "$ws_payload && $ws_onports && !($ws_protos)" \
    -T fields -e tcp.stream -e frame.number -e _ws.col.Protocol -e _ws.col.Info | ws_keep)
  ws_bad=$(ws_tshark -r "$ws_pcap" -2 -Y "_ws.malformed || _ws.lua.error" \
    -T fields -e tcp.stream -e frame.number -e _ws.col.Protocol -e _ws.col.Info -e _ws.expert.message | ws_keep)
  ws_luaerr=$(ws_tshark -r "$ws_pcap" -2 -Y "_ws.lua.error" -T fields -e frame.number | wc -l)
  printf 'recorded %s frames; %s with payload on lab ports (tcp %s, udp %s) in whole streams\n' \
    "$ws_total" "$ws_lab" "$ws_tcp_ports" "$ws_udp_ports"
  if [ "$ws_lab" -ge 100 ]; then pass "wireshark: $ws_lab frames of lab payload recorded"; else fail "wireshark: only $ws_lab frames of lab payload recorded"; fi
  if [ -z "$ws_left" ]; then
    pass "wireshark: every frame with payload on a lab port decodes as a socklab protocol"
  else
    fail "wireshark: $(wc -l <<<"$ws_left") frames with payload on a lab port not decoded:"
    awk 'NR <= 20 {print "     | " $0}' <<<"$ws_left"
  fi
  if [ -z "$ws_bad" ] && [ "$ws_luaerr" -eq 0 ]; then
    pass "wireshark: no malformed frame, no Lua error"
  else
    fail "wireshark: malformed frames or Lua errors ($ws_luaerr Lua errors):"
    awk 'NR <= 20 {print "     | " $0}' <<<"$ws_bad"
  fi
  for ws_p in autoreply tinytcp filestream connid moviedb; do
    ws_n=$(ws_tshark -r "$ws_pcap" -2 -Y "$ws_p" -T fields -e frame.number | wc -l)
    if [ "$ws_n" -gt 0 ]; then pass "wireshark: $ws_n frames decoded as $ws_p"; else fail "wireshark: no frame decoded as $ws_p"; fi
    # A few distinct lines of each (awk reads to the end: no SIGPIPE).
    ws_tshark -r "$ws_pcap" -2 -Y "$ws_p" -T fields -e _ws.col.Protocol -e _ws.col.Info |
      awk '!seen[$0]++ && n++ < 4 {print "     " $0}'
  done
  ws_noise=$(grep -v '^Running as user "root"' "$ws_err" || true)
  if [ -z "$ws_noise" ]; then
    pass "wireshark: tshark loaded the plugins without a word on stderr"
  else
    fail "wireshark: tshark stderr:"
    awk 'NR <= 20 {print "     | " $0}' <<<"$ws_noise"
  fi
fi
rm -rf "$ws_dir"
