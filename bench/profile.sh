#!/usr/bin/env bash
# Profiles the gateway as a user runs it, `gateway proxy --to ORIGIN`
# (cache and compression on, metrics on; the access log off unless
# ACCESS_LOG says otherwise), under one bench load, and saves what it
# spends per request: a CPU profile and an allocation profile of the
# same window, their `top -cum` text, and CPU µs and allocations per
# request (from /proc and the Go runtime's malloc count on /metrics).
# With FLOOR=1 bench/floor is measured under the same load afterwards,
# so that the gateway's own cost is the difference.
#
# Usage: bash bench/profile.sh [TARGET]
# TARGET (default h1), 50 connections, a 1 KiB body from bench/origin:
#   h1     pass-through (no-store) over HTTP/1.1, wrk; upstream HTTP/1.1
#   h2c    pass-through over h2c, 10 streams a connection, h2load
#   hit    cache hits over HTTP/1.1, wrk
#   hit64  cache hits of /cacheable/65536 over HTTP/1.1 (identity), wrk
#   gzhit  cache hits of the 64 KiB JSON /catalog/65536 with
#          Accept-Encoding: gzip (the stored gzip coding), wrk
#   miss   misses over HTTP/1.1, wrk: a new no-store URL each request
#          (/nostore?i=N), so every request takes the cache's miss path
# Knobs (environment):
#   PROFILE_SECONDS=10  profile length (the load runs 2 s more, the first unmeasured)
#   OUT_DIR=/tmp/gwprofile-TARGET  where cpu.pprof, allocs.pprof, *.txt go
#   ACCESS_LOG=off    the gateway's --access-log
#   GOFLAGS_BUILD=    extra go build flags of the gateway (e.g. -pgo=off)
#   GW_FLAGS=         extra flags of `gateway proxy` (e.g. "-no-cache -no-compress")
#   FLOOR=0           1: also measure bench/floor (h1 and h2c only)
#   PORT_BASE=28500   ports PORT_BASE (origin), +1 (gateway), +2 (admin), +3 (floor)
#   LOAD_CPU=0 PROXY_CPU=1  cores for load and origin, and the server under test
# Writes nothing under bench/.

# PID_NAME variables are set by start() (lib.sh) through eval.
# shellcheck disable=SC2153
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
QUIET_WAIT="${QUIET_WAIT:-0}"
bench_knobs
TARGET="${1:-h1}"
SECS="${PROFILE_SECONDS:-10}"
OUT_DIR="${OUT_DIR:-/tmp/gwprofile-$TARGET}"
ACCESS_LOG="${ACCESS_LOG:-off}"
GOFLAGS_BUILD="${GOFLAGS_BUILD:-}"
GW_FLAGS="${GW_FLAGS:-}"
FLOOR="${FLOOR:-0}"
PORT_BASE="${PORT_BASE:-28500}"
P_ORIGIN=$PORT_BASE
P_GW=$((PORT_BASE + 1))
P_ADMIN=$((PORT_BASE + 2))
P_FLOOR=$((PORT_BASE + 3))
case "$TARGET" in h1 | h2c | hit | hit64 | gzhit | miss) ;; *) die "TARGET $TARGET: want h1, h2c, hit, hit64, gzhit or miss" ;; esac
[[ "$SECS" =~ ^[1-9][0-9]*$ ]] || die "PROFILE_SECONDS=$SECS: must be whole seconds"

bench_pinning
bench_tmp
for p in $P_ORIGIN $P_GW $P_ADMIN $P_FLOOR; do
	port_free "$p" || die "port 127.0.0.1:$p is in use; set PORT_BASE to another range"
done
mkdir -p "$OUT_DIR"

log "building the gateway${GOFLAGS_BUILD:+ ($GOFLAGS_BUILD)}, origin and floor"
read -r -a flags <<<"$GOFLAGS_BUILD"
(cd "$REPO_DIR" && go build "${flags[@]}" -o "$TMP/gateway" . &&
	go build -o "$TMP/origin" ./bench/origin &&
	go build -o "$TMP/floor" ./bench/floor) >"$TMP/build.log" 2>&1 || {
	tail -n 30 "$TMP/build.log" >&2
	die "build failed"
}

start ORIGIN "$TMP/origin.log" "${PIN_LOAD[@]}" "$TMP/origin" -addr "127.0.0.1:$P_ORIGIN" -size 1024
wait_http origin "$PID_ORIGIN" "$TMP/origin.log" "http://127.0.0.1:$P_ORIGIN/" || die "origin did not start"
read -r -a gw_flags <<<"$GW_FLAGS"
start GW "$TMP/gateway.log" "${PIN_PROXY[@]}" "$TMP/gateway" proxy \
	-listen "127.0.0.1:$P_GW" -admin "127.0.0.1:$P_ADMIN" -to "http://127.0.0.1:$P_ORIGIN" \
	-protocol http1 -access-log "$ACCESS_LOG" "${gw_flags[@]}"
wait_http gateway "$PID_GW" "$TMP/gateway.log" "http://127.0.0.1:$P_ADMIN/readyz" || die "gateway did not start"

LOAD_SEQ=0

# load URL SECONDS sets LOAD_CMD to TARGET's load on URL.
load() {
	local pre=(timeout $(($2 + 30)) "${PIN_LOAD[@]}")
	case "$TARGET" in
	h1) LOAD_CMD=("${pre[@]}" wrk -t1 -c50 -d"$2s" "$1/") ;;
	hit) LOAD_CMD=("${pre[@]}" wrk -t1 -c50 -d"$2s" "$1/cacheable/1024") ;;
	hit64) LOAD_CMD=("${pre[@]}" wrk -t1 -c50 -d"$2s" "$1/cacheable/65536") ;;
	gzhit) LOAD_CMD=("${pre[@]}" wrk -t1 -c50 -d"$2s" -H 'Accept-Encoding: gzip' "$1/catalog/65536") ;;
	h2c) LOAD_CMD=("${pre[@]}" h2load -c50 -m10 -D"$2" "$1/") ;;
	miss)
		LOAD_SEQ=$((LOAD_SEQ + 1))
		LOAD_CMD=("${pre[@]}" wrk -t1 -c50 -d"$2s" -s "$BENCH_DIR/distinct.lua" "$1" $((LOAD_SEQ * 100000000)))
		;;
	esac
}

# requests OUT prints how many requests the load output reports.
requests() {
	case "$TARGET" in
	h2c) awk '/^requests:/ {print $8}' "$1" ;; # succeeded
	*) awk '/ requests in / {print $1}' "$1" ;;
	esac
}

mallocs() { curl -fsS "http://127.0.0.1:$P_ADMIN/metrics" | awk '$1 == "go_memstats_mallocs_total" {printf "%.0f", $2}'; }

# measure_window PID URL PROFILE: runs the load on URL for SECS+2 s and,
# from its second second, measures PID over SECS s: CPU ticks into
# W_TICKS; with PROFILE, the CPU and allocation profiles and the
# malloc count too.
measure_window() {
	local pid=$1 url=$2 prof=$3 lpid t0 t1 m0 m1 ppid apid
	load "$url" $((SECS + 2))
	"${LOAD_CMD[@]}" >"$TMP/load.txt" 2>&1 &
	lpid=$!
	sleep 1
	if ((prof)); then
		m0=$(mallocs)
		curl -fsS --max-time $((SECS + 30)) -o "$OUT_DIR/cpu.pprof" \
			"http://127.0.0.1:$P_ADMIN/debug/pprof/profile?seconds=$SECS" &
		ppid=$!
		curl -fsS --max-time $((SECS + 30)) -o "$OUT_DIR/allocs.pprof" \
			"http://127.0.0.1:$P_ADMIN/debug/pprof/allocs?seconds=$SECS" &
		apid=$!
	fi
	t0=$(cpu_ticks "$pid")
	sleep "$SECS"
	t1=$(cpu_ticks "$pid")
	if ((prof)); then
		wait "$ppid" || die "the CPU profile failed"
		wait "$apid" || die "the allocation profile failed"
		m1=$(mallocs)
		W_MALLOCS=$((m1 - m0))
	fi
	wait "$lpid" || { tail -n 20 "$TMP/load.txt" >&2; die "the load failed"; }
	W_TICKS=$((t1 - t0))
	# Requests over the whole load run, scaled to the measured window.
	W_REQS=$(awk -v n="$(requests "$TMP/load.txt")" -v w="$SECS" -v d=$((SECS + 2)) 'BEGIN { printf "%.0f", n * w / d }')
}

wait_quiet
log "profiling the gateway ($TARGET, ${SECS}s)"
# A first second of load warms connections and, for hit, the cache.
load "http://127.0.0.1:$P_GW" 1
"${LOAD_CMD[@]}" >/dev/null 2>&1 || true
measure_window "$PID_GW" "http://127.0.0.1:$P_GW" 1
GW_CPU=$(cpu_us_per_req "$W_TICKS" "$W_REQS")
GW_ALLOCS=$(awk -v m="$W_MALLOCS" -v n="$W_REQS" 'BEGIN { printf "%.1f", m / n }')
cp "$TMP/load.txt" "$OUT_DIR/load.txt"

go tool pprof -top -cum -nodecount=60 "$OUT_DIR/cpu.pprof" >"$OUT_DIR/cpu-top-cum.txt" 2>/dev/null
go tool pprof -top -nodecount=40 "$OUT_DIR/cpu.pprof" >"$OUT_DIR/cpu-top.txt" 2>/dev/null
go tool pprof -sample_index=alloc_objects -top -cum -nodecount=60 "$OUT_DIR/allocs.pprof" >"$OUT_DIR/allocs-top-cum.txt" 2>/dev/null
go tool pprof -sample_index=alloc_objects -top -nodecount=40 "$OUT_DIR/allocs.pprof" >"$OUT_DIR/allocs-top.txt" 2>/dev/null

summary="$OUT_DIR/summary.txt"
{
	echo "target $TARGET, ${SECS}s, $PIN_NOTE, other load at start $LOADAVG_START (loadavg)"
	echo "gateway proxy: ~$W_REQS requests, CPU $GW_CPU µs/req, $GW_ALLOCS allocations/req"
} >"$summary"

if ((FLOOR)) && [[ $TARGET == h1 || $TARGET == h2c ]]; then
	kill -TERM "$PID_GW" 2>/dev/null || true
	wait "$PID_GW" 2>/dev/null || true
	start FLOOR "$TMP/floor.log" "${PIN_PROXY[@]}" "$TMP/floor" -addr "127.0.0.1:$P_FLOOR" -to "127.0.0.1:$P_ORIGIN"
	wait_http floor "$PID_FLOOR" "$TMP/floor.log" "http://127.0.0.1:$P_FLOOR/" || die "floor did not start"
	load "http://127.0.0.1:$P_FLOOR" 1
	"${LOAD_CMD[@]}" >/dev/null 2>&1 || true
	measure_window "$PID_FLOOR" "http://127.0.0.1:$P_FLOOR" 0
	echo "floor: ~$W_REQS requests, CPU $(cpu_us_per_req "$W_TICKS" "$W_REQS") µs/req" >>"$summary"
fi
cat "$summary"
log "wrote $OUT_DIR: cpu.pprof allocs.pprof cpu-top-cum.txt cpu-top.txt allocs-top-cum.txt allocs-top.txt summary.txt"
