#!/usr/bin/env bash
# A/B of two builds of the gateway on the pass-through path: the build of
# revision A (default HEAD~1) against the working tree (or revision B),
# each started fresh for every run, runs alternating A, B, A, B, ... so
# that a machine that slows down or speeds up during the bench weighs on
# both alike. Reports medians and the B/A ratio per row.
#
# Usage: bash bench/ab.sh [A_REV [B_REV]]
# A revision "-" is the working tree, so that one tree can be measured
# against itself built otherwise, e.g. without its PGO profile:
#   A_GOFLAGS=-pgo=off bash bench/ab.sh - -
# Knobs (environment):
#   A_GOFLAGS, B_GOFLAGS  extra `go build` flags of A and of B (default none)
#   DURATION=5s    length of each measured run
#   RUNS=4         runs per build and row (alternating)
#   ROWS="h1 h1close h2c tls h2tls"  which rows (below)
#   MEMORY_PROFILE=edge  the config's memory_profile (sidecar: as `gateway proxy` runs)
#   PORT_BASE=28200  first of the loopback ports used
#   LOAD_CPU=0 PROXY_CPU=1, OTHER_MAX, RETRIES, QUIET_WAIT as in run.sh
#
# Rows, all 1 KiB from the bench origin over an HTTP/1.1 upstream:
#   h1       HTTP/1.1, 50 keep-alive connections (wrk)
#   h1close  HTTP/1.1, a new connection per request (wrk, Connection: close)
#   h2c      HTTP/2 prior knowledge, 50 connections x 10 streams (h2load)
#   tls      HTTP/1.1 over TLS, 50 keep-alive connections (wrk)
#   h2tls    HTTP/2 over TLS by ALPN, 50 connections x 10 streams (h2load)
# and, on routes with cache and compression on, as `gateway proxy` has
# them (not in the default ROWS):
#   pass     pass-through of the no-store 1 KiB body, HTTP/1.1 (wrk)
#   hit      cache hits of a 1 KiB body, HTTP/1.1 (wrk)
#   hit64    cache hits of a 64 KiB body, HTTP/1.1, no Accept-Encoding (wrk)
#   gzip     cache hits of a 64 KiB JSON gzipped for the client (wrk)
# Prints a Markdown table; writes nothing under bench/.

# PID_NAME variables are set by start() (lib.sh) through eval.
# shellcheck disable=SC2153
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
DURATION="${DURATION:-5s}"
RUNS="${RUNS:-4}"
WARMUP="${WARMUP:-1s}"  # whole seconds: h2load takes no unit
bench_knobs
A_REV="${1:-HEAD~1}"
B_REV="${2:-}"
[[ "$A_REV" != - ]] || A_REV=""
[[ "$B_REV" != - ]] || B_REV=""
A_GOFLAGS="${A_GOFLAGS:-}"
B_GOFLAGS="${B_GOFLAGS:-}"
ROWS="${ROWS:-h1 h1close h2c tls h2tls}"
PORT_BASE="${PORT_BASE:-28200}"
P_ORIGIN=$PORT_BASE
P_GW=$((PORT_BASE + 1))
P_TLS=$((PORT_BASE + 2))
P_ADMIN=$((PORT_BASE + 3))

bench_tools
bench_pinning
bench_tmp
for p in $P_ORIGIN $P_GW $P_TLS $P_ADMIN; do
	port_free "$p" || die "port 127.0.0.1:$p is in use; set PORT_BASE to another range"
done

# build REV OUT FLAGS builds the gateway at REV (empty: the working tree)
# with the extra go build FLAGS (split on spaces).
build() {
	local rev=$1 out=$2 src
	local flags
	read -r -a flags <<<"$3"
	if [[ -z "$rev" ]]; then
		(cd "$REPO_DIR" && go build "${flags[@]}" -o "$out" .) || die "building the working tree failed"
		return
	fi
	src="$TMP/src-$(basename "$out")"
	mkdir -p "$src"
	(cd "$REPO_DIR" && git archive "$rev") | tar -x -C "$src" || die "git archive $rev failed"
	(cd "$src" && go build "${flags[@]}" -o "$out" .) || die "building $rev failed"
}
log "building A (${A_REV:-working tree} $A_GOFLAGS) and B (${B_REV:-working tree} $B_GOFLAGS) and the origin"
build "$A_REV" "$TMP/gw-a" "$A_GOFLAGS"
build "$B_REV" "$TMP/gw-b" "$B_GOFLAGS"
(cd "$REPO_DIR" && go build -o "$TMP/origin" ./bench/origin) || die "building bench/origin failed"
# describe REV FLAGS names a build in the report.
describe() {
	local d="working tree"
	[[ -z "$1" ]] || d=$(cd "$REPO_DIR" && git log -1 --format='%h %s' "$1" | cut -c1-70)
	echo "$d${2:+ (go build $2)}"
}
A_DESC=$(describe "$A_REV" "$A_GOFLAGS")
B_DESC=$(describe "$B_REV" "$B_GOFLAGS")

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null ||
	die "openssl could not make a certificate"

MEMORY_PROFILE="${MEMORY_PROFILE:-edge}"
cat >"$TMP/gw.yaml" <<EOF
shutdown_grace: 2s
memory_profile: $MEMORY_PROFILE
log:
  level: warn
access_log:
  enabled: false
listeners:
  - address: "127.0.0.1:$P_GW"
    h2c: true
  - address: "127.0.0.1:$P_TLS"
    tls:
      cert_file: $TMP/cert.pem
      key_file: $TMP/key.pem
admin:
  address: "127.0.0.1:$P_ADMIN"
upstreams:
  origin:
    targets: ["http://127.0.0.1:$P_ORIGIN"]
    protocol: http1
    max_idle_per_target: 256
routes:
  - path: /
    upstream: origin
  # The pass, hit, hit64 and gzip rows' routes; / above neither caches nor
  # compresses.
  - path: /pass
    upstream: origin
    cache:
      enabled: true
    compress:
      enabled: true
  - path: /cacheable
    upstream: origin
    cache:
      enabled: true
  - path: /catalog
    upstream: origin
    cache:
      enabled: true
    compress:
      enabled: true
EOF

start ORIGIN "$TMP/origin.log" "${PIN_LOAD[@]}" "$TMP/origin" -addr "127.0.0.1:$P_ORIGIN" -size 1024
wait_http origin "$PID_ORIGIN" "$TMP/origin.log" "http://127.0.0.1:$P_ORIGIN/" || die "origin did not start"

# parse_h2load OUT prints: rps requests errors.
parse_h2load() {
	local rps reqs errs
	rps=$(awk '/^finished in/ {print $4}' "$1")
	reqs=$(awk '/^requests:/ {print $6}' "$1")
	errs=$(awk '/^requests:/ {e += $10 + $12 + $14} /^status codes:/ {e += $7 + $9} END {print e + 0}' "$1")
	[[ -n "$rps" && -n "$reqs" ]] || return 1
	echo "$rps $reqs $errs"
}

# load ROW D sets LOAD_CMD to ROW's load generator, running D seconds.
load() {
	local d=$2
	local pre=(timeout $((d + 30)) "${PIN_LOAD[@]}")
	case "$1" in
	h1) LOAD_CMD=("${pre[@]}" wrk --latency -t1 -c50 -d"${d}s" "http://127.0.0.1:$P_GW/") ;;
	h1close) LOAD_CMD=("${pre[@]}" wrk --latency -t1 -c50 -d"${d}s" -H "Connection: close" "http://127.0.0.1:$P_GW/") ;;
	tls) LOAD_CMD=("${pre[@]}" wrk --latency -t1 -c50 -d"${d}s" "https://127.0.0.1:$P_TLS/") ;;
	h2c) LOAD_CMD=("${pre[@]}" h2load -c50 -m10 -D"$d" "http://127.0.0.1:$P_GW/") ;;
	h2tls) LOAD_CMD=("${pre[@]}" h2load -c50 -m10 -D"$d" "https://127.0.0.1:$P_TLS/") ;;
	pass) LOAD_CMD=("${pre[@]}" wrk --latency -t1 -c50 -d"${d}s" "http://127.0.0.1:$P_GW/pass") ;;
	hit) LOAD_CMD=("${pre[@]}" wrk --latency -t1 -c50 -d"${d}s" "http://127.0.0.1:$P_GW/cacheable/1024") ;;
	hit64) LOAD_CMD=("${pre[@]}" wrk --latency -t1 -c50 -d"${d}s" "http://127.0.0.1:$P_GW/cacheable/65536") ;;
	gzip) LOAD_CMD=("${pre[@]}" wrk --latency -t1 -c50 -d"${d}s" -H "Accept-Encoding: gzip" "http://127.0.0.1:$P_GW/catalog/65536") ;;
	*) die "unknown row $1" ;;
	esac
}

warm() {
	load "$ROW" "$(seconds "$WARMUP")"
	"${LOAD_CMD[@]}" >/dev/null 2>&1 || true
}
run_load() {
	load "$ROW" "$(seconds "$DURATION")"
	"${LOAD_CMD[@]}"
}

wait_quiet
mkdir -p "$TMP/out"
for ROW in $ROWS; do
	for i in $(seq 1 "$RUNS"); do
		for which in a b; do
			start GW "$TMP/gw-$which.log" "${PIN_PROXY[@]}" "$TMP/gw-$which" run -config "$TMP/gw.yaml"
			wait_http gateway "$PID_GW" "$TMP/gw-$which.log" "http://127.0.0.1:$P_ADMIN/readyz" || die "gateway $which did not start"
			out="$TMP/out/$ROW-$which-$i.txt"
			measure "$out" "$PID_GW" warm run_load
			if [[ $ROW == h2* ]]; then res=$(parse_h2load "$out") || res=""; else res=$(parse_wrk "$out" | awk '{print $1, $2, $5}') || res=""; fi
			[[ -n "$res" ]] || { tail -n 20 "$out" >&2; die "could not parse the load output of $ROW ($which)"; }
			read -r rps reqs errs <<<"$res"
			cpu=$(cpu_us_per_req "$M_TICKS" "$reqs")
			echo "$rps $cpu $errs $M_OTHER" >>"$TMP/out/$ROW-$which.samples"
			log "$ROW $which run $i: $rps req/s, ${cpu} µs CPU/req, errors $errs, other load ${M_OTHER}%"
			kill -TERM "$PID_GW" 2>/dev/null || true
			wait "$PID_GW" 2>/dev/null || true
		done
	done
done

echo
echo "A: $A_DESC"
echo "B: $B_DESC"
echo "memory_profile: $MEMORY_PROFILE"
echo "Medians of $RUNS alternating runs of $DURATION each, fresh processes; $PIN_NOTE."
echo
echo "| row | A req/s | B req/s | B/A | A CPU µs/req | B CPU µs/req | B/A | errors A/B |"
echo "|---|---|---|---|---|---|---|---|"
for ROW in $ROWS; do
	ra=$(median 1 "$TMP/out/$ROW-a.samples")
	rb=$(median 1 "$TMP/out/$ROW-b.samples")
	ca=$(median 2 "$TMP/out/$ROW-a.samples")
	cb=$(median 2 "$TMP/out/$ROW-b.samples")
	ea=$(awk '{e += $3} END {print e + 0}' "$TMP/out/$ROW-a.samples")
	eb=$(awk '{e += $3} END {print e + 0}' "$TMP/out/$ROW-b.samples")
	awk -v r="$ROW" -v ra="$ra" -v rb="$rb" -v ca="$ca" -v cb="$cb" -v ea="$ea" -v eb="$eb" \
		'BEGIN { printf "| %s | %.0f | %.0f | %.3f | %.2f | %.2f | %.3f | %d/%d |\n", r, ra, rb, rb / ra, ca, cb, cb / ca, ea, eb }'
done
