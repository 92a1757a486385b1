#!/usr/bin/env bash
# Dashboard benchmark: what open dashboard pages cost the proxy. One
# gateway (metrics on, a caching route) is loaded with wrk with no page
# open and with 100 pages open (bench/dashwatch holding 100 event streams
# of /api/v1/dashboard/events, read as a page reads them), for a cache
# hit and a pass-through, in the same run. The streams' sampling (one
# gather of the metrics a second, shared by every page) and their writes
# run in the gateway's process, so they are in its CPU per request.
#
# Usage: bash bench/dashboard.sh
# Knobs (environment):
#   DURATION=10s RUNS=3 QUICK=1 WARMUP=2s  as in the other scripts
#   PAGES=100        event streams held open in the "pages" rows
#   PORT_BASE=33500  loopback ports PORT_BASE..PORT_BASE+2
#   LOAD_CPU=0 PROXY_CPU=1  cores for wrk+origin+pages and the gateway
#   KEEP_TMP=1 OTHER_MAX=15 RETRIES=2 QUIET_WAIT=300  as in run.sh
#
# Writes bench/results/98-dashboard.md and reassembles bench/RESULTS.md.
# Exits 2 when some row could not be measured, 1 on a harness error.

# PID_NAME variables are set by start() (lib.sh) through eval.
# shellcheck disable=SC2153
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
bench_knobs
PORT_BASE="${PORT_BASE:-33500}"
PAGES="${PAGES:-100}"
[[ "$PAGES" =~ ^[1-9][0-9]*$ ]] || die "PAGES=$PAGES: must be a positive integer"
CONNS=50
SIZE=1024
P_ORIGIN=$PORT_BASE
P_GW=$((PORT_BASE + 1))
P_ADMIN=$((PORT_BASE + 2))

CONDS=(none pages)
declare -A LABEL=([none]="no page open" [pages]="$PAGES pages open")
WORKLOADS=(hit pass)
declare -A WL_LABEL=([hit]="cache hit (1 KiB)" [pass]="pass-through (no-store, 1 KiB)")
declare -A WL_PATH=([hit]="/cacheable/$SIZE" [pass]="/")

[[ -x /usr/local/go/bin/go ]] && PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null || die "go not found (expected /usr/local/go/bin/go)"
command -v wrk >/dev/null || die "wrk not found (apt-get install wrk)"
command -v curl >/dev/null || die "curl not found (apt-get install curl)"
bench_pinning
bench_tmp
for p in $P_ORIGIN $P_GW $P_ADMIN; do
	port_free "$p" || die "port 127.0.0.1:$p is in use; set PORT_BASE to another range"
done

log "building origin and dashwatch"
(cd "$REPO_DIR" && go build -o "$TMP/origin" ./bench/origin && go build -o "$TMP/dashwatch" ./bench/dashwatch) ||
	die "building bench/origin or bench/dashwatch failed"
cat >"$TMP/gateway.yaml" <<YAML
shutdown_grace: 5s
log:
  level: warn
access_log:
  enabled: false
listeners:
  - address: "127.0.0.1:$P_GW"
admin:
  address: "127.0.0.1:$P_ADMIN"
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
YAML
WHY=$(build_gateway "$TMP/gateway.yaml" "config")
[[ -z "$WHY" ]] || die "$WHY"

start ORIGIN "$TMP/origin.log" "${PIN_LOAD[@]}" "$TMP/origin" -addr "127.0.0.1:$P_ORIGIN" -size "$SIZE"
wait_http origin "$PID_ORIGIN" "$TMP/origin.log" "http://127.0.0.1:$P_ORIGIN/" || die "origin did not start"
start_gw "$TMP/gateway.yaml" "$P_ADMIN" "$P_GW" || die "gateway did not start ($(one_line "$TMP/gateway.log"))"
check_pinned gateway "$PROXY_CPU" "$PID_GW"
curl -fsS -o /dev/null "http://127.0.0.1:$P_GW${WL_PATH[hit]}" || die "warming the cache failed"

EVENTS_URL="http://127.0.0.1:$P_ADMIN/api/v1/dashboard/events"
run_wrk() { timeout "$LOAD_TIMEOUT" "${PIN_LOAD[@]}" wrk -t1 -c"$CONNS" --latency -d "$1" "$CUR_URL"; }
warm_wrk() { run_wrk "$WARMUP" >/dev/null 2>&1 || true; }
measured_wrk() { run_wrk "$DURATION"; }

# pages_open holds $PAGES streams open (dashwatch, on the load core) and
# waits until the gateway counts them all as watching.
pages_open() {
	local hold=$(($(seconds "$DURATION") * (RETRIES + 1) * 2 + $(seconds "$WARMUP") * (RETRIES + 1) + 120))
	start WATCH "$TMP/dashwatch.out" "${PIN_LOAD[@]}" "$TMP/dashwatch" -url "$EVENTS_URL" -n "$PAGES" -d "${hold}s"
	for _ in $(seq 1 100); do
		# Each stream's first event is a full snapshot; once every
		# stream has its own, the pages are open.
		kill -0 "$PID_WATCH" 2>/dev/null || break
		if (($(ss -Htn state established "( sport = :$P_ADMIN )" | wc -l) >= PAGES)); then
			return 0
		fi
		sleep 0.1
	done
	log "the $PAGES pages did not all connect; dashwatch said: $(one_line "$TMP/dashwatch.out")"
	return 1
}
pages_close() {
	kill -TERM "$PID_WATCH" 2>/dev/null || true
	wait "$PID_WATCH" 2>/dev/null || true
	WATCH_LINE=$(grep -m1 '^streams=' "$TMP/dashwatch.out" || true)
}

wait_quiet
mkdir -p "$TMP/out"
WATCH_LINE=""
for run in $(seq 1 "$RUNS"); do
	for wl in "${WORKLOADS[@]}"; do
		for k in "${!CONDS[@]}"; do
			c=${CONDS[$(((k + run - 1) % ${#CONDS[@]}))]}
			CUR_URL="http://127.0.0.1:$P_GW${WL_PATH[$wl]}"
			id="$wl-$c"
			out="$TMP/out/$id.run$run.txt"
			log "run $run/$RUNS: ${WL_LABEL[$wl]}, ${LABEL[$c]}"
			if [[ $c == pages ]] && ! pages_open; then
				pages_close
				continue
			fi
			measure "$out" "$PID_GW" warm_wrk measured_wrk
			[[ $c != pages ]] || pages_close
			((M_RC == 0)) || log "wrk exited non-zero for $id"
			if ! res=$(parse_wrk "$out"); then
				log "could not parse wrk output for $id"
				continue
			fi
			read -r rps reqs p50 p99 errs <<<"$res"
			cpu=$(cpu_us_per_req "$M_TICKS" "$reqs")
			echo "$rps $p50 $p99 $cpu $errs $M_OTHER" >>"$TMP/out/$id.samples"
			log "  -> $rps req/s, p50 ${p50}µs, p99 ${p99}µs, CPU ${cpu}µs/req, other load ${M_OTHER}%${WATCH_LINE:+, pages: $WATCH_LINE}"
			[[ $c != pages ]] || WATCH_LINE_LAST=$WATCH_LINE
			WATCH_LINE=""
		done
	done
done

MISSING=0
SECTION="$BENCH_DIR/results/98-dashboard.md"
mkdir -p "$BENCH_DIR/results"
{
	echo "## Open dashboard pages and the proxy ($PAGES pages, $CONNS connections)"
	echo
	echo "Measured $MEASURE_START to $(date -u "+%H:%M:%S UTC") by \`bench/dashboard.sh\`:"
	echo "wrk rows $DURATION per run after a $WARMUP warmup, $RUNS run(s) per row."
	echo "Pinning: $PIN_NOTE."
	echo
	echo "- one gateway, metrics on (admin listener), one route \`cache: {enabled: true}\` to \`bench/origin\`"
	echo "- pages: \`bench/dashwatch\` holding $PAGES event streams of \`/api/v1/dashboard/events\` open during"
	echo "  the warmup and the measured run, reading every event (one a second each); last run: ${WATCH_LINE_LAST:-none}"
	env_lines
	echo
	echo "| request | pages | req/s | p50 ms | p99 ms | CPU µs/req | req/s ÷ none | CPU/req ÷ none | errors | other load % | runs |"
	echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	for wl in "${WORKLOADS[@]}"; do
		ref="$TMP/out/$wl-none.used"
		for c in "${CONDS[@]}"; do
			wrk_row "${WL_LABEL[$wl]}" "${LABEL[$c]}" "$TMP/out/$wl-$c.samples" "$TMP/out/$wl-$c.used" "$ref" \
				"not measured (see the log)" || MISSING=1
		done
	done
	echo
	note_medians
	echo "CPU µs/req is the gateway's user+system time over the measured run divided"
	echo "by the requests wrk completed: with pages open it includes the sampling and"
	echo "the events written to every page. With no page open the gateway samples"
	echo "nothing (the dashboard's sampler runs only while a page watches)."
	note_other_load
} >"$SECTION"

publish_section "$SECTION" "some rows were not measured; see the table"
