#!/usr/bin/env bash
# WebSocket benchmark: echo round trips through the gateway next to the
# same echo server measured directly, on loopback. bench/wsbench is both
# the echo server (-serve) and the client (coder/websocket): each
# connection sends a message, waits for its echo, checks it and sends the
# next.
#
# Usage: bash bench/websocket.sh
# Knobs (environment):
#   DURATION=10s   length of each measured run
#   RUNS=3         measured runs per row; the median is reported
#   QUICK=1        smoke test: DURATION=2s RUNS=1
#   WARMUP=2s      unmeasured run before every measured one
#   MAX_MSGS=2000000  bound on the messages of one run, whatever DURATION
#   PORT_BASE=30000  first of the loopback ports used (see below)
#   LOAD_CPU=0 PROXY_CPU=1  cores for client+echo server and server under test
#   KEEP_TMP=1     keep the temp dir (config, logs, raw output)
#   OTHER_MAX=15 RETRIES=2 QUIET_WAIT=300  interference handling, as in run.sh
#
# Writes bench/results/40-websocket.md and reassembles bench/RESULTS.md.
# Exits 2 when the gateway could not be measured (its rows say why), 1 on a
# harness error.

# PID_NAME variables are set by start() (lib.sh) through eval.
# shellcheck disable=SC2153
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
bench_knobs
MAX_MSGS="${MAX_MSGS:-2000000}"
[[ "$MAX_MSGS" =~ ^[1-9][0-9]*$ ]] || die "MAX_MSGS=$MAX_MSGS: must be a positive integer"
PORT_BASE="${PORT_BASE:-30000}"
# Rows: connections and message size. One connection shows latency
# without queueing; 50 show throughput.
CASES=("1 1024" "50 1024" "50 65536")

# Port plan, all on 127.0.0.1.
P_ECHO=$PORT_BASE                 # echo server behind the gateway (load core)
P_GW=$((PORT_BASE + 1))           # gateway
P_ECHO_DIRECT=$((PORT_BASE + 2))  # echo server measured directly (proxy core)
P_GW_ADMIN=$((PORT_BASE + 1092))

TARGETS=(direct gw)
declare -A LABEL=([direct]="echo server (direct)" [gw]="gateway")
declare -A URL=([direct]="ws://127.0.0.1:$P_ECHO_DIRECT/echo" [gw]="ws://127.0.0.1:$P_GW/echo")
declare -A WHY=([direct]="" [gw]="")

# ---------------------------------------------------------------- tools
# Only go and curl are needed (bench_tools would install nginx and the rest).
[[ -x /usr/local/go/bin/go ]] && PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null || die "go not found (expected /usr/local/go/bin/go)"
command -v curl >/dev/null || die "curl not found (apt-get install curl)"
bench_pinning
bench_tmp

for p in $P_ECHO $P_GW $P_ECHO_DIRECT $P_GW_ADMIN; do
	port_free "$p" || die "port 127.0.0.1:$p is in use; set PORT_BASE to another range"
done

# ---------------------------------------------------------------- build
log "building wsbench"
(cd "$REPO_DIR" && go build -o "$TMP/wsbench" ./bench/wsbench) || die "building bench/wsbench failed"

cat >"$TMP/gateway.yaml" <<EOF
shutdown_grace: 5s
log:
  level: warn
# As nginx here (access_log off); bench/observability.sh measures its cost.
access_log:
  enabled: false
listeners:
  - address: "127.0.0.1:$P_GW"
admin:
  address: "127.0.0.1:$P_GW_ADMIN"
upstreams:
  echo:
    targets: ["http://127.0.0.1:$P_ECHO"]
    protocol: http1
routes:
  - path: /
    upstream: echo
    websocket:
      max_connections: 0
      idle_timeout: 5m
EOF

WHY[gw]=$(build_gateway "$TMP/gateway.yaml" config)
[[ -z "${WHY[gw]}" ]] || log "${WHY[gw]}"

# ---------------------------------------------------------------- servers
start ECHO "$TMP/echo.log" "${PIN_LOAD[@]}" "$TMP/wsbench" -serve "127.0.0.1:$P_ECHO"
wait_http echo "$PID_ECHO" "$TMP/echo.log" "http://127.0.0.1:$P_ECHO/healthz" || die "echo server did not start"
# The echo server measured directly runs on the proxy core, so its rows
# are the same setup as the gateway's: one server core, one load core.
start ECHO_DIRECT "$TMP/echo-direct.log" "${PIN_PROXY[@]}" "$TMP/wsbench" -serve "127.0.0.1:$P_ECHO_DIRECT"
wait_http echo-direct "$PID_ECHO_DIRECT" "$TMP/echo-direct.log" "http://127.0.0.1:$P_ECHO_DIRECT/healthz" ||
	die "echo server (direct) did not start"
if [[ -z "${WHY[gw]}" ]] && ! start_gw "$TMP/gateway.yaml" "$P_GW_ADMIN"; then
	WHY[gw]="not measured: gateway did not start ($(one_line "$TMP/gateway.log"))"
	log "${WHY[gw]}"
fi

server_pids() {
	case "$1" in
	direct) echo "$PID_ECHO_DIRECT" ;;
	gw) echo "$PID_GW" ;;
	esac
}
for t in "${TARGETS[@]}"; do
	[[ -z "${WHY[$t]}" ]] || continue
	# shellcheck disable=SC2046
	check_pinned "${LABEL[$t]}" "$PROXY_CPU" $(server_pids "$t")
done

# ---------------------------------------------------------------- measuring
# run_ws DURATION runs wsbench on the current row (CUR_T, CUR_CONNS,
# CUR_SIZE), bounded by DURATION, MAX_MSGS and a safety timeout.
run_ws() {
	timeout "$LOAD_TIMEOUT" "${PIN_LOAD[@]}" "$TMP/wsbench" -url "${URL[$CUR_T]}" \
		-conns "$CUR_CONNS" -size "$CUR_SIZE" -duration "$1" -max "$MAX_MSGS" -timeout 10s
}
warm_ws() { run_ws "$WARMUP" >/dev/null 2>&1 || true; }
measured_ws() { run_ws "$DURATION"; }

wait_quiet
mkdir -p "$TMP/out"
for run in $(seq 1 "$RUNS"); do
	for c in "${CASES[@]}"; do
		read -r conns size <<<"$c"
		for t in "${TARGETS[@]}"; do
			[[ -z "${WHY[$t]}" ]] || continue
			CUR_T=$t CUR_CONNS=$conns CUR_SIZE=$size
			id="$t-$conns-$size"
			out="$TMP/out/$id.run$run.txt"
			log "run $run/$RUNS: ${LABEL[$t]}, $conns connection(s), $size B messages"
			measure "$out" "$(server_pids "$t")" warm_ws measured_ws
			line=$(grep -m1 '^conns=' "$out" || true)
			if ((M_RC != 0)) || [[ -z "$line" ]]; then
				log "wsbench failed for ${LABEL[$t]}, $conns x $size B; output was:"
				tail -n 20 "$out" >&2 || true
				[[ -n "$line" ]] || continue
			fi
			field() { sed -n "s/.*\b$1=\([0-9.]*\).*/\1/p" <<<"$line"; }
			msgs=$(field msgs)
			cpu=$(cpu_us_per_req "$M_TICKS" "$msgs")
			echo "$(field msgs_per_s) $(field p50_us) $(field p99_us) $cpu $(field errors) $M_OTHER" >>"$TMP/out/$id.samples"
			log "  -> $(field msgs_per_s) msg/s, p50 $(field p50_us)µs, p99 $(field p99_us)µs, CPU ${cpu}µs/msg, errors $(field errors), other load ${M_OTHER}%"
		done
	done
done

GW_STATS=""
if [[ -z "${WHY[gw]}" ]]; then
	GW_STATS=$(curl -fsS --max-time 2 "http://127.0.0.1:$P_GW_ADMIN/websocket/stats" 2>/dev/null | tr -d ' \n' || true)
fi

# ---------------------------------------------------------------- report
MISSING=0
SECTION="$BENCH_DIR/results/40-websocket.md"
mkdir -p "$BENCH_DIR/results"
{
	echo "## WebSocket echo (round trips through the gateway vs direct)"
	echo
	echo "Measured $MEASURE_START to $(date -u "+%H:%M:%S UTC") by \`bench/websocket.sh\`:"
	echo "$DURATION per run after a $WARMUP warmup (at most $MAX_MSGS messages a run), $RUNS run(s) per row."
	echo "Pinning: $PIN_NOTE."
	echo
	echo "- client and echo server: \`bench/wsbench\` (github.com/coder/websocket), binary"
	echo "  messages, no compression; each connection sends one message, waits for"
	echo "  its echo and checks it before the next (a round trip)"
	echo "- gateway: access log off, upstream \`protocol: http1\`, route \`websocket: {max_connections: 0, idle_timeout: 5m}\`"
	echo "- the echo server behind the gateway shares CPU $LOAD_CPU with the client; the one"
	echo "  measured directly has CPU $PROXY_CPU to itself, as the gateway does"
	env_lines
	echo
	echo "| target | connections | message bytes | msg/s | p50 ms | p99 ms | CPU µs/msg | msg/s ÷ direct | p50 ÷ direct | errors | other load % | runs |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	for c in "${CASES[@]}"; do
		read -r conns size <<<"$c"
		ref="$TMP/out/direct-$conns-$size.used"
		for t in "${TARGETS[@]}"; do
			id="$t-$conns-$size"
			all="$TMP/out/$id.samples"
			f="$TMP/out/$id.used"
			if [[ ! -s "$all" ]]; then
				MISSING=1
				echo "| ${LABEL[$t]} | $conns | $size | ${WHY[$t]:-not measured: wsbench failed} | | | | | | | | |"
				continue
			fi
			used_samples "$all" "$f" 6
			rr="" rp=""
			if [[ -s "$ref" ]]; then
				rr=$(median 1 "$ref")
				rp=$(median 2 "$ref")
			fi
			awk -v l="${LABEL[$t]}" -v n="$conns" -v s="$size" -v r="$(median 1 "$f")" -v a="$(median 2 "$f")" \
				-v b="$(median 3 "$f")" -v c="$(median 4 "$f")" -v e="$(median 5 "$f")" -v o="$(max_col 6 "$f")" \
				-v rr="$rr" -v rp="$rp" -v u="$(wc -l <"$f")/$(wc -l <"$all")" 'BEGIN {
				qr = (rr + 0 > 0) ? sprintf("%.2f", r / rr) : "–"
				qp = (rp + 0 > 0) ? sprintf("%.2f", a / rp) : "–"
				printf "| %s | %d | %d | %.0f | %.3f | %.3f | %.1f | %s | %s | %d | %d | %s |\n", l, n, s, r, a / 1000, b / 1000, c, qr, qp, e, o, u }'
		done
	done
	echo
	note_medians
	echo "msg/s counts round trips completed per second over all connections;"
	echo "latency is per round trip. CPU µs/msg is user+system time of the server under"
	echo "test (the gateway, or the echo server itself for \"direct\") over the measured"
	echo "run, divided by round trips; the gateway's excludes the echo server behind it."
	echo "Ratios to direct: the gateway adds a hop, so msg/s below 1 and p50 above 1"
	echo "are its cost."
	note_other_load
	if [[ -n "$GW_STATS" ]]; then
		echo
		echo "Gateway \`/websocket/stats\` after the runs: \`$GW_STATS\`"
	fi
} >"$SECTION"

publish_section "$SECTION" "some rows were not measured; see the table"
