#!/usr/bin/env bash
# Observability benchmark: the gateway's throughput and CPU per request
# with metrics and the access log off, with metrics only, and with
# metrics plus the JSON access log to a file, in the same run, for a
# pass-through request and a cache hit (the cheapest request, where the
# relative cost is highest). The three gateways are the same binary with
# different configs, all pinned to the server core; only one is under
# load at a time.
#
# Usage: bash bench/observability.sh
# Knobs (environment):
#   DURATION=10s   length of each measured run (wrk -d)
#   RUNS=3         measured runs per row; the median is reported
#   QUICK=1        smoke test: DURATION=2s RUNS=1
#   WARMUP=2s      unmeasured load before every measured run
#   PORT_BASE=31500  first of the loopback ports used (see below)
#   LOAD_CPU=0 PROXY_CPU=1  cores for load generator+origin and server under test
#   KEEP_TMP=1     keep the temp dir (configs, logs, raw output)
#   OTHER_MAX=15 RETRIES=2 QUIET_WAIT=300  interference handling, as in run.sh
#
# Writes bench/results/60-observability.md and reassembles
# bench/RESULTS.md. Exits 2 when some row could not be measured (the
# table says why), 1 on a harness error.

# PID_NAME variables are set by start() (lib.sh) through eval.
# shellcheck disable=SC2153
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
bench_knobs
PORT_BASE="${PORT_BASE:-31500}"
CONNS=50 # fixed: the section heading promises 50 connections
SIZE=1024

# Port plan, all on 127.0.0.1.
P_ORIGIN=$PORT_BASE # origin behind the gateways (load core)
declare -A PORT=([off]=$((PORT_BASE + 1)) [metrics]=$((PORT_BASE + 2)) [all]=$((PORT_BASE + 3)))
declare -A ADMIN=([off]=off [metrics]=$((PORT_BASE + 1092)) [all]=$((PORT_BASE + 1093)))

CONFIGS=(off metrics all)
declare -A LABEL=([off]="off" [metrics]="metrics" [all]="metrics + access log")
declare -A WHY=([off]="" [metrics]="" [all]="")
WORKLOADS=(pass hit)
declare -A WL_LABEL=([pass]="pass-through (no-store, 1 KiB)" [hit]="cache hit (1 KiB)")
declare -A WL_PATH=([pass]="/" [hit]="/cacheable/$SIZE")

# ---------------------------------------------------------------- tools
# Only go, wrk and curl are needed (bench_tools would install nginx and
# Varnish too).
[[ -x /usr/local/go/bin/go ]] && PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null || die "go not found (expected /usr/local/go/bin/go)"
command -v wrk >/dev/null || die "wrk not found (apt-get install wrk)"
command -v curl >/dev/null || die "curl not found (apt-get install curl)"
bench_pinning
bench_tmp

for p in $P_ORIGIN "${PORT[@]}" "${ADMIN[metrics]}" "${ADMIN[all]}"; do
	port_free "$p" || die "port 127.0.0.1:$p is in use; set PORT_BASE to another range"
done

# ---------------------------------------------------------------- build
log "building origin"
(cd "$REPO_DIR" && go build -o "$TMP/origin" ./bench/origin) || die "building bench/origin failed"
ACCESS_LOG="$TMP/access.log"

# gateway_config CONFIG
gateway_config() {
	local c=$1 admin="127.0.0.1:${ADMIN[$1]}" enabled=true
	[[ $c != off ]] || admin=off
	[[ $c == all ]] || enabled=false
	cat <<EOF
shutdown_grace: 5s
log:
  level: warn
listeners:
  - address: "127.0.0.1:${PORT[$c]}"
admin:
  address: "$admin"
access_log:
  enabled: $enabled
  format: json
  output: "$ACCESS_LOG"
upstreams:
  origin:
    targets: ["http://127.0.0.1:$P_ORIGIN"]
    protocol: http1
    max_idle_per_target: 256
routes:
  - name: bench
    path: /
    upstream: origin
    cache:
      enabled: true
EOF
}

log "building gateway"
GW_BUILD_OK=1
if ! (cd "$REPO_DIR" && go build -o "$TMP/gateway" .) >"$TMP/gateway-build.log" 2>&1; then
	GW_BUILD_OK=0
	for c in "${CONFIGS[@]}"; do WHY[$c]="not measured: gateway did not build ($(one_line "$TMP/gateway-build.log"))"; done
	log "${WHY[off]}"
fi
for c in "${CONFIGS[@]}"; do
	gateway_config "$c" >"$TMP/gw-$c.yaml"
	if ((GW_BUILD_OK)) && ! "$TMP/gateway" validate -config "$TMP/gw-$c.yaml" >"$TMP/gw-$c-validate.log" 2>&1; then
		WHY[$c]="not measured: gateway rejected the config ($(one_line "$TMP/gw-$c-validate.log"))"
		log "$c: ${WHY[$c]}"
	fi
done

# ---------------------------------------------------------------- servers
start ORIGIN "$TMP/origin.log" "${PIN_LOAD[@]}" "$TMP/origin" -addr "127.0.0.1:$P_ORIGIN" -size "$SIZE"
wait_http origin "$PID_ORIGIN" "$TMP/origin.log" "http://127.0.0.1:$P_ORIGIN/" || die "origin did not start"

declare -A GW_PID
for c in "${CONFIGS[@]}"; do
	[[ -z "${WHY[$c]}" ]] || continue
	start "GW_$c" "$TMP/gw-$c.log" "${PIN_PROXY[@]}" "$TMP/gateway" run -config "$TMP/gw-$c.yaml"
	eval "GW_PID[$c]=\$PID_GW_$c"
	if ! wait_http "gateway ($c)" "${GW_PID[$c]}" "$TMP/gw-$c.log" "http://127.0.0.1:${PORT[$c]}/"; then
		WHY[$c]="not measured: gateway did not start ($(one_line "$TMP/gw-$c.log"))"
		log "$c: ${WHY[$c]}"
		continue
	fi
	check_pinned "gateway ($c)" "$PROXY_CPU" "${GW_PID[$c]}"
done
if [[ -z "${WHY[metrics]}" ]] && ! curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:${ADMIN[metrics]}/metrics"; then
	WHY[metrics]="not measured: GET /metrics failed"
fi

# Before measuring, a cache-hit row's URL must be a hit on that gateway.
check_hit() {
	local url=$1 hdr
	curl -fsS -o /dev/null --max-time 5 "$url" || return 1
	hdr=$(curl -fsS -D - -o /dev/null --max-time 5 "$url" | tr -d '\r' | grep -i '^cache-status:' || true)
	[[ "$hdr" =~ \;[[:space:]]*hit ]]
}
for c in "${CONFIGS[@]}"; do
	[[ -z "${WHY[$c]}" ]] || continue
	check_hit "http://127.0.0.1:${PORT[$c]}${WL_PATH[hit]}" ||
		WHY[$c]="not measured: ${WL_PATH[hit]} is not a cache hit"
done

# ---------------------------------------------------------------- measuring
# run_wrk DURATION loads the current row (CUR_URL).
run_wrk() { timeout "$LOAD_TIMEOUT" "${PIN_LOAD[@]}" wrk -t1 -c"$CONNS" --latency -d "$1" "$CUR_URL"; }
# The access log is emptied before each run, so the disk holds one run's
# lines at most; the gateway appends (O_APPEND) and follows.
warm_wrk() {
	: >"$ACCESS_LOG"
	run_wrk "$WARMUP" >/dev/null 2>&1 || true
}
measured_wrk() { run_wrk "$DURATION"; }

wait_quiet
mkdir -p "$TMP/out"
LOG_LINES=""
# Rounds go over every row before repeating, so slow drift of the
# machine spreads over all rows alike, and each round starts the
# configurations at the next one, so none is always measured last (the
# access log's file is largest then, and the origin longest running).
for run in $(seq 1 "$RUNS"); do
	for wl in "${WORKLOADS[@]}"; do
		for k in "${!CONFIGS[@]}"; do
			c=${CONFIGS[$(((k + run - 1) % ${#CONFIGS[@]}))]}
			[[ -z "${WHY[$c]}" ]] || continue
			CUR_URL="http://127.0.0.1:${PORT[$c]}${WL_PATH[$wl]}"
			id="$wl-$c"
			out="$TMP/out/$id.run$run.txt"
			log "run $run/$RUNS: ${WL_LABEL[$wl]}, ${LABEL[$c]}, $CUR_URL"
			measure "$out" "${GW_PID[$c]}" warm_wrk measured_wrk
			((M_RC == 0)) || log "wrk exited non-zero for $id"
			if ! res=$(parse_wrk "$out"); then
				log "could not parse wrk output for $id; output was:"
				tail -n 20 "$out" >&2 || true
				continue
			fi
			read -r rps reqs p50 p99 errs <<<"$res"
			cpu=$(cpu_us_per_req "$M_TICKS" "$reqs")
			echo "$rps $p50 $p99 $cpu $errs $M_OTHER" >>"$TMP/out/$id.samples"
			log "  -> $rps req/s, p50 ${p50}µs, p99 ${p99}µs, CPU ${cpu}µs/req, errors $errs, other load ${M_OTHER}%"
			if [[ $c == all ]]; then
				# Lines reach the file within the log's flush interval.
				sleep 0.3
				LOG_LINES="$(wc -l <"$ACCESS_LOG") lines, $(wc -c <"$ACCESS_LOG") bytes after the last measured run (warmup included)"
			fi
		done
	done
done

METRICS_SAMPLE=""
if [[ -z "${WHY[all]}" ]]; then
	METRICS_SAMPLE=$(curl -fsS --max-time 2 "http://127.0.0.1:${ADMIN[all]}/metrics" 2>/dev/null |
		grep -E '^gateway_requests_total' | head -n 4 || true)
fi
LOG_SAMPLE=$(head -n 1 "$ACCESS_LOG" 2>/dev/null || true)

# ---------------------------------------------------------------- report
MISSING=0
WRK_VERSION=$(wrk -v 2>&1 | head -n1 || true)
SECTION="$BENCH_DIR/results/60-observability.md"
mkdir -p "$BENCH_DIR/results"
{
	echo "## Observability (metrics and access log on vs off, $CONNS connections)"
	echo
	echo "Measured $MEASURE_START to $(date -u "+%H:%M:%S UTC") by \`bench/observability.sh\`:"
	echo "wrk rows $DURATION per run after a $WARMUP warmup, $RUNS run(s) per row."
	echo "Pinning: $PIN_NOTE."
	echo
	echo "Three gateways from the same binary, one route (\`cache: {enabled: true}\`) to"
	echo "\`bench/origin\` over HTTP/1.1, all on the server core, loaded one at a time:"
	echo
	echo "- off: \`admin: {address: off}\` (no metrics) and \`access_log: {enabled: false}\`;"
	echo "  request ids are still made and sent"
	echo "- metrics: the admin listener on, so every request is counted"
	echo "  (\`gateway_requests_total\`, the latency histograms); \`access_log\` off"
	echo "- metrics + access log: as metrics, plus \`access_log: {format: json, output: FILE}\`,"
	echo "  one JSON line per request to a file on $(df -T "$TMP" | awk 'NR == 2 { print $2 }'), emptied before each run"
	echo "- $WRK_VERSION"
	env_lines
	echo
	echo "| request | configuration | req/s | p50 ms | p99 ms | CPU µs/req | req/s ÷ off | CPU/req ÷ off | errors | other load % | runs |"
	echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	for wl in "${WORKLOADS[@]}"; do
		ref="$TMP/out/$wl-off.used"
		for c in "${CONFIGS[@]}"; do
			wrk_row "${WL_LABEL[$wl]}" "${LABEL[$c]}" "$TMP/out/$wl-$c.samples" "$TMP/out/$wl-$c.used" "$ref" \
				"${WHY[$c]:-not measured: load run failed}" || MISSING=1
		done
	done
	echo
	note_medians
	echo "CPU µs/req is user+system time of the gateway under"
	echo "load over the measured run, divided by requests completed; it excludes the"
	echo "origin and wrk. The cost of observability is CPU/req ÷ off above 1 (and"
	echo "req/s ÷ off below 1, when the server core is the bottleneck). errors"
	echo "counts non-2xx responses and socket errors."
	note_other_load
	if [[ -n "$LOG_LINES" ]]; then
		echo
		echo "Access log: $LOG_LINES. A line:"
		echo
		echo '```'
		echo "$LOG_SAMPLE"
		echo '```'
	fi
	if [[ -n "$METRICS_SAMPLE" ]]; then
		echo
		echo "\`/metrics\` of the metrics + access log gateway after the runs (request counters):"
		echo
		echo '```'
		echo "$METRICS_SAMPLE"
		echo '```'
	fi
} >"$SECTION"

publish_section "$SECTION" "some rows were not measured; see the table"
