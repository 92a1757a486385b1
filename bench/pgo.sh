#!/usr/bin/env bash
# Makes default.pgo, the CPU profile that `go build` uses for
# profile-guided optimisation of the gateway: the real binary, run as
# `gateway proxy` (cache and compression on, batching on, metrics on, the
# access log off), is driven through a mixed load one phase at a time,
# and a CPU profile of each phase is taken from its admin listener. The
# phases' profiles are merged into one, each weighing by its length.
#
# Usage: bash bench/pgo.sh
# Then, unless MEASURE=0, it measures what the profile buys: bench/ab.sh
# of the working tree built with -pgo=off (A) against the same tree with
# the new default.pgo (B), fresh processes, alternating runs; and what it
# costs: cold builds (an empty GOCACHE) of the gateway and of the test
# binaries with and without it. Writes bench/results/96-pgo.md and
# reassembles bench/RESULTS.md. Whether default.pgo is kept is a decision
# for the commit, by that section: this script always writes it.
# Knobs (environment):
#   MEASURE=1         0: only make the profile
#   AB_ROWS="h1 h2c tls hit gzip" AB_RUNS=5 AB_DURATION=5s  the A/B (ab.sh's ROWS, RUNS, DURATION)
#   PHASE_SECONDS=6   profile length of each phase (the load runs 2 s longer)
#   PHASES="h1 h2c hit miss gzip br batch"  which phases (below)
#   OUT=default.pgo   where the merged profile goes (a relative path is in the repository)
#   PORT_BASE=28400   ports PORT_BASE (origin), +1 (gateway), +2 (admin)
#   LOAD_CPU=0 PROXY_CPU=1  cores for the load and origin, and the gateway
#   KEEP_TMP=1        keep the temp dir (each phase's profile, logs)
#
# Phases, 50 connections each unless said:
#   h1     pass-through of a 1 KiB no-store body, HTTP/1.1 (wrk)
#   h2c    the same over h2c, 50 connections x 10 streams (h2load)
#   hit    cache hits of a 1 KiB cacheable body (wrk)
#   miss   distinct cacheable URLs, each fetched and stored once (bench/fill)
#   gzip   cache hits of a 64 KiB JSON, Accept-Encoding: gzip (wrk)
#   br     the same with br
#   batch  POST /_batch of 10 GETs, one batch after another (bench/batchbench)
#
# The gateway profiled is built with -pgo=off, so that the profile does
# not depend on the one it replaces.

# PID_NAME variables are set by start() (lib.sh) through eval.
# shellcheck disable=SC2153
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
QUIET_WAIT="${QUIET_WAIT:-60}"
bench_knobs
PHASE_SECONDS="${PHASE_SECONDS:-6}"
PHASES="${PHASES:-h1 h2c hit miss gzip br batch}"
OUT="${OUT:-default.pgo}"
[[ "$OUT" == /* ]] || OUT="$REPO_DIR/$OUT"
MEASURE="${MEASURE:-1}"
AB_ROWS="${AB_ROWS:-h1 h2c tls hit gzip}"
AB_RUNS="${AB_RUNS:-5}"
AB_DURATION="${AB_DURATION:-5s}"
PORT_BASE="${PORT_BASE:-28400}"
P_ORIGIN=$PORT_BASE
P_GW=$((PORT_BASE + 1))
P_ADMIN=$((PORT_BASE + 2))
[[ "$PHASE_SECONDS" =~ ^[1-9][0-9]*$ ]] || die "PHASE_SECONDS=$PHASE_SECONDS: must be whole seconds"

bench_tools
bench_pinning
bench_tmp
for p in $P_ORIGIN $P_GW $P_ADMIN; do
	port_free "$p" || die "port 127.0.0.1:$p is in use; set PORT_BASE to another range"
done

log "building the gateway (-pgo=off), origin, fill and batchbench"
(cd "$REPO_DIR" && go build -pgo=off -o "$TMP/gateway" . &&
	go build -o "$TMP/origin" ./bench/origin &&
	go build -o "$TMP/fill" ./bench/fill &&
	go build -o "$TMP/batchbench" ./bench/batchbench) >"$TMP/build.log" 2>&1 || {
	tail -n 30 "$TMP/build.log" >&2
	die "build failed"
}

start ORIGIN "$TMP/origin.log" "${PIN_LOAD[@]}" "$TMP/origin" -addr "127.0.0.1:$P_ORIGIN" -size 1024
wait_http origin "$PID_ORIGIN" "$TMP/origin.log" "http://127.0.0.1:$P_ORIGIN/" || die "origin did not start"
start GW "$TMP/gateway.log" "${PIN_PROXY[@]}" "$TMP/gateway" proxy \
	-listen "127.0.0.1:$P_GW" -admin "127.0.0.1:$P_ADMIN" -to "http://127.0.0.1:$P_ORIGIN" \
	-protocol http1 -batch -access-log off
wait_http gateway "$PID_GW" "$TMP/gateway.log" "http://127.0.0.1:$P_ADMIN/readyz" || die "gateway did not start"
check_pinned gateway "$PROXY_CPU" "$PID_GW"

# load PHASE SECONDS sets LOAD_CMD to PHASE's load, bounded in time (and
# for miss and batch in requests too).
load() {
	local d=$2 gw="http://127.0.0.1:$P_GW"
	local pre=(timeout $((d + 30)) "${PIN_LOAD[@]}")
	case "$1" in
	h1) LOAD_CMD=("${pre[@]}" wrk -t1 -c50 -d"${d}s" "$gw/") ;;
	h2c) LOAD_CMD=("${pre[@]}" h2load -c50 -m10 -D"$d" "$gw/") ;;
	hit) LOAD_CMD=("${pre[@]}" wrk -t1 -c50 -d"${d}s" "$gw/cacheable/1024") ;;
	# Distinct URLs, so each is a miss that is stored; -n bounds it.
	miss) LOAD_CMD=("${pre[@]}" "$TMP/fill" -url "$gw/cacheable/1024" -n 2000000 -c 50 -size 1024 -max-time "${d}s") ;;
	gzip | br) LOAD_CMD=("${pre[@]}" wrk -t1 -c50 -d"${d}s" -H "Accept-Encoding: $1" "$gw/catalog/65536") ;;
	batch) LOAD_CMD=("${pre[@]}" "$TMP/batchbench" -url "$gw" -proto h1 -path / -items 10 -modes batch \
		-rounds 1000000 -warmup 0 -max-time "${d}s") ;;
	*) die "unknown phase $1" ;;
	esac
}

wait_quiet
mkdir -p "$TMP/prof"
for phase in $PHASES; do
	load "$phase" $((PHASE_SECONDS + 2))
	"${LOAD_CMD[@]}" >"$TMP/prof/$phase.load.txt" 2>&1 &
	lpid=$!
	# The profile starts after a second of load, so connections are open
	# and the cache holds what the phase hits.
	sleep 1
	curl -fsS --max-time $((PHASE_SECONDS + 30)) -o "$TMP/prof/$phase.pprof" \
		"http://127.0.0.1:$P_ADMIN/debug/pprof/profile?seconds=$PHASE_SECONDS" ||
		die "could not take the profile of phase $phase"
	lrc=0
	wait "$lpid" || lrc=$?
	# fill exits non-zero when its time bound, not its request count,
	# ends it: that is how the miss phase is meant to end.
	if ((lrc != 0)) && ! { [[ $phase == miss ]] && grep -q '^requests=[0-9]* errors=0 ' "$TMP/prof/$phase.load.txt"; }; then
		tail -n 20 "$TMP/prof/$phase.load.txt" >&2
		die "the load of phase $phase failed"
	fi
	log "phase $phase: $(go tool pprof -top "$TMP/prof/$phase.pprof" 2>/dev/null | awk '/^Duration:/ {print $0; exit}')"
done

profiles=()
for phase in $PHASES; do profiles+=("$TMP/prof/$phase.pprof"); done
(cd "$REPO_DIR" && go tool pprof -proto "${profiles[@]}" >"$TMP/merged.pgo" 2>"$TMP/merge.log") ||
	{ cat "$TMP/merge.log" >&2; die "merging the profiles failed"; }
mv "$TMP/merged.pgo" "$OUT"
log "wrote $OUT ($(wc -c <"$OUT") bytes) from phases: $PHASES"
go tool pprof -top -nodecount=15 "$OUT" 2>/dev/null | sed -n '1,22p' >&2

((MEASURE)) || exit 0

# The profiled servers would sit on the cores the A/B measures on.
kill -TERM "$PID_GW" "$PID_ORIGIN" 2>/dev/null || true
wait "$PID_GW" "$PID_ORIGIN" 2>/dev/null || true

# build_secs GOFLAGS CMD... prints the wall seconds of a go command run
# from an empty build cache (the worst case: every package compiled).
build_secs() {
	local flags=$1 cache t0 t1
	shift
	cache=$(mktemp -d "$TMP/gocache.XXXXXX")
	t0=$(date +%s%N)
	(cd "$REPO_DIR" && GOCACHE=$cache GOFLAGS="-buildvcs=false $flags" "$@") >"$TMP/buildtime.log" 2>&1 ||
		{ tail -n 20 "$TMP/buildtime.log" >&2; die "$* failed"; }
	t1=$(date +%s%N)
	rm -rf "$cache"
	awk -v d=$((t1 - t0)) 'BEGIN { printf "%.1f", d / 1e9 }'
}
log "cold builds with and without the profile"
BUILD_OFF=$(build_secs -pgo=off go build -o /dev/null .)
BUILD_ON=$(build_secs "" go build -o /dev/null .)
TEST_OFF=$(build_secs -pgo=off go test -race -count=1 -run '^$' ./...)
TEST_ON=$(build_secs "" go test -race -count=1 -run '^$' ./...)
log "go build: ${BUILD_OFF}s without, ${BUILD_ON}s with; go test -race (compile only): ${TEST_OFF}s without, ${TEST_ON}s with"

log "A/B: -pgo=off against default.pgo (rows: $AB_ROWS)"
A_GOFLAGS=-pgo=off ROWS="$AB_ROWS" RUNS="$AB_RUNS" DURATION="$AB_DURATION" \
	bash "$BENCH_DIR/ab.sh" - - >"$TMP/ab.md" || die "bench/ab.sh failed"

SECTION="$BENCH_DIR/results/96-pgo.md"
{
	echo "## Profile-guided optimisation (default.pgo)"
	echo
	echo "Measured $MEASURE_START to $(date -u "+%H:%M:%S UTC") by \`bench/pgo.sh\`."
	echo "The profile: \`gateway proxy\` (cache, compression and batching on, metrics"
	echo "on, access log off), built with -pgo=off, profiled ${PHASE_SECONDS} s in each phase of"
	echo "$PHASES (see the script), the phases' CPU profiles merged."
	echo "Pinning: $PIN_NOTE."
	echo
	env_lines
	echo
	echo "What it buys: \`bench/ab.sh\` of the same tree built with \`-pgo=off\` (A) and with"
	echo "default.pgo (B); rows h1/h2c/tls are pass-through (1 KiB, no-store), hit a"
	echo "1 KiB cache hit, gzip a 64 KiB JSON cache hit gzipped for the client."
	sed -n '/^A: /,$p' "$TMP/ab.md"
	echo
	echo "What it costs: wall time from an empty build cache (every package,"
	echo "the standard library included, compiled), one run each:"
	echo
	echo "| command | -pgo=off s | default.pgo s | ratio |"
	echo "| --- | ---: | ---: | ---: |"
	awk -v a="$BUILD_OFF" -v b="$BUILD_ON" 'BEGIN { printf "| go build . | %s | %s | %.2f |\n", a, b, b / a }'
	awk -v a="$TEST_OFF" -v b="$TEST_ON" 'BEGIN { printf "| go test -race -run ^$ ./... | %s | %s | %.2f |\n", a, b, b / a }'
} >"$SECTION"
MISSING=0
publish_section "$SECTION" ""
