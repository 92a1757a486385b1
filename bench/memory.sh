#!/usr/bin/env bash
# Memory benchmark: the gateway with a cache of max_size M is sent ten
# times M of distinct cacheable 64 KiB objects, then left idle. Reported
# per configuration: peak RSS (VmHWM), RSS right after the load and after
# IDLE seconds of idle, the bound M × 1.25 + 50 MiB, and the gateway's CPU
# per request of the fill, for
#   - this build, with the rule it applies by itself;
#   - this build with GOMEMLIMIT set to what the previous rule set
#     (max_size + 256 MiB), which isolates the limit's trade;
#   - the previous build (OLD_REV), whose rule is that limit and no
#     return of memory when idle.
# Each run starts a fresh gateway, so VmHWM is that run's peak; the rounds
# go over every configuration before repeating, starting at the next one.
#
# Usage: bash bench/memory.sh
# Knobs (environment):
#   MAX_SIZE=64MiB  the cache's max_size (bytes, or NMiB/NGiB)
#   RUNS=3          runs per configuration; the median is reported
#   IDLE=30         seconds of idle after the load before idle RSS is read
#   QUICK=1         smoke test: RUNS=1 IDLE=15
#   CONNS=16        fill connections
#   OLD_REV=f690995 the previous build (git revision before the rule changed)
#   PORT_BASE=32000  first of the loopback ports used: +0 origin, +1 gateway, +1092 admin
#   LOAD_CPU=0 PROXY_CPU=1  cores for fill client+origin and the gateway
#   KEEP_TMP=1      keep the temp dir (logs, raw output)
#   OTHER_MAX=15    a run during which other processes used more than this
#                   % of a core is left out of the medians (when others are not)
#
# Writes bench/results/70-memory.md and reassembles bench/RESULTS.md. Exits
# 2 when some configuration could not be measured (the table says why), 1
# on a harness error.

# PID_NAME variables are set by start() (lib.sh) through eval.
# shellcheck disable=SC2153
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
if [[ "${QUICK:-0}" == "1" ]]; then
	RUNS="${RUNS:-1}"
	IDLE="${IDLE:-15}"
fi
bench_knobs
IDLE="${IDLE:-30}"
CONNS="${CONNS:-16}"
MAX_SIZE="${MAX_SIZE:-64MiB}"
OLD_REV="${OLD_REV:-f690995}"
PORT_BASE="${PORT_BASE:-32000}"
OBJ=65536
MIB=1048576
[[ "$IDLE" =~ ^[1-9][0-9]*$ ]] || die "IDLE=$IDLE: must be whole seconds"
[[ "$CONNS" =~ ^[1-9][0-9]*$ ]] || die "CONNS=$CONNS: must be a positive integer"
case "$MAX_SIZE" in
*GiB) M=$((${MAX_SIZE%GiB} * 1024 * MIB)) ;;
*MiB) M=$((${MAX_SIZE%MiB} * MIB)) ;;
*[!0-9]* | "") die "MAX_SIZE=$MAX_SIZE: use bytes, NMiB or NGiB" ;;
*) M=$MAX_SIZE ;;
esac
((M >= 8 * MIB)) || die "MAX_SIZE=$MAX_SIZE: at least 8MiB"
N=$((10 * M / OBJ))           # objects written per run: ten times max_size
BOUND=$((M + M / 4 + 50 * MIB)) # the promise: peak and idle RSS within it
OLD_LIMIT=$((M + 256 * MIB))    # what the previous rule set

P_ORIGIN=$PORT_BASE
P_GW=$((PORT_BASE + 1))
P_ADMIN=$((PORT_BASE + 1092))

TARGETS=(new oldlimit prev)
declare -A LABEL=(
	[new]="this build"
	[oldlimit]="this build, GOMEMLIMIT=$((OLD_LIMIT / MIB))MiB (the previous limit)"
	[prev]="previous build ($OLD_REV)"
)
declare -A WHY=([new]="" [oldlimit]="" [prev]="")

# ---------------------------------------------------------------- tools
# Only go, curl and the repository are needed (no wrk: the fill client
# is bench/fill, bounded in requests).
[[ -x /usr/local/go/bin/go ]] && PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null || die "go not found (expected /usr/local/go/bin/go)"
if ! command -v curl >/dev/null; then
	sudo=""
	[[ $(id -u) -eq 0 ]] || sudo=sudo
	log "installing curl"
	$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq curl >/dev/null ||
		die "curl missing and could not be installed"
fi
bench_pinning
bench_tmp

for p in $P_ORIGIN $P_GW $P_ADMIN; do
	port_free "$p" || die "port 127.0.0.1:$p is in use; set PORT_BASE to another range"
done

# ---------------------------------------------------------------- build
log "building origin and fill"
(cd "$REPO_DIR" && go build -o "$TMP/origin" ./bench/origin && go build -o "$TMP/fill" ./bench/fill) ||
	die "building bench/origin or bench/fill failed"
log "building gateway"
if ! (cd "$REPO_DIR" && go build -o "$TMP/gateway" .) >"$TMP/gateway-build.log" 2>&1; then
	tail -n 30 "$TMP/gateway-build.log" >&2 || true
	WHY[new]="not measured: gateway did not build ($(one_line "$TMP/gateway-build.log"))"
	WHY[oldlimit]=${WHY[new]}
fi
log "building the previous gateway ($OLD_REV)"
mkdir -p "$TMP/prev"
if ! { git -C "$REPO_DIR" archive "$OLD_REV" | tar -x -C "$TMP/prev"; } 2>"$TMP/prev-build.log" ||
	! (cd "$TMP/prev" && go build -o "$TMP/gateway-prev" .) >>"$TMP/prev-build.log" 2>&1; then
	tail -n 30 "$TMP/prev-build.log" >&2 || true
	WHY[prev]="not measured: $OLD_REV did not build ($(one_line "$TMP/prev-build.log"))"
fi
declare -A BIN=([new]="$TMP/gateway" [oldlimit]="$TMP/gateway" [prev]="$TMP/gateway-prev")
declare -A ENV=([new]="" [oldlimit]="GOMEMLIMIT=$OLD_LIMIT" [prev]="")

# ---------------------------------------------------------------- servers
start ORIGIN "$TMP/origin.log" "${PIN_LOAD[@]}" "$TMP/origin" -addr "127.0.0.1:$P_ORIGIN"
wait_http origin "$PID_ORIGIN" "$TMP/origin.log" "http://127.0.0.1:$P_ORIGIN/" || die "origin did not start"

# rss_kib PID FIELD prints a /proc/PID/status field (VmRSS, VmHWM) in KiB.
rss_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# stop_gw PID stops one gateway this script started and waits for it.
stop_gw() {
	kill -TERM "$1" 2>/dev/null || true
	for _ in $(seq 1 100); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	# Gone: the exit trap must not signal a PID the kernel may reuse.
	local p keep=()
	for p in "${PIDS[@]}"; do
		[[ "$p" == "$1" ]] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

# fill_run is the measured load: the fill client, bounded in requests and
# time. FILL_START makes each run's URLs new to the origin's logs too.
FILL_START=0
fill_run() {
	timeout 600 "${PIN_LOAD[@]}" "$TMP/fill" -url "http://127.0.0.1:$P_GW/cacheable/$OBJ" \
		-n "$N" -start "$FILL_START" -c "$CONNS" -size "$OBJ" -max-time 5m
}

# one_run TARGET RUN starts a fresh gateway, fills it, idles, and appends
# a sample line: cpu_us_per_req peak_kib load_end_kib idle_kib idle_cpu_ms
# seconds other_load errors drop_s (seconds until RSS first came within
# 2 MiB of its idle value; -1: never during IDLE).
one_run() {
	local t=$1 run=$2 out="$TMP/out/$1.run$2.txt" pid i rss idle_kib t0 t1 drop=-1
	local -a env=()
	[[ -z "${ENV[$t]}" ]] || env=("${ENV[$t]}")
	# GOMEMLIMIT and GOGC of the caller's environment must not leak in.
	start GW "$TMP/gw-$t.run$run.log" env -u GOMEMLIMIT -u GOGC "${env[@]}" "${PIN_PROXY[@]}" "${BIN[$t]}" proxy \
		--listen "127.0.0.1:$P_GW" --to "http://127.0.0.1:$P_ORIGIN" --cache-size "$M" \
		--admin "127.0.0.1:$P_ADMIN" --access-log off
	pid=$PID_GW
	if ! wait_http gateway "$pid" "$TMP/gw-$t.run$run.log" "http://127.0.0.1:$P_GW/"; then
		stop_gw "$pid"
		return 1
	fi
	FILL_START=$((FILL_START + 10000000))
	local RETRIES=0 # one fill per process: a disturbed run is kept and marked
	measure "$out" "$pid" : fill_run
	local line reqs errs secs
	line=$(grep -m1 '^requests=' "$out" || true)
	reqs=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<<"$line")
	errs=$(sed -n 's/.*errors=\([0-9]*\).*/\1/p' <<<"$line")
	secs=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$line")
	if ((M_RC != 0)) || [[ -z "$reqs" ]]; then
		log "fill failed for ${LABEL[$t]}; output was:"
		tail -n 20 "$out" >&2 || true
		stop_gw "$pid"
		return 1
	fi
	local load_end
	load_end=$(rss_kib "$pid" VmRSS)
	t0=$(cpu_ticks "$pid")
	local -a trace=()
	for i in $(seq 1 "$IDLE"); do
		sleep 1
		trace+=("$(rss_kib "$pid" VmRSS)")
	done
	t1=$(cpu_ticks "$pid")
	idle_kib=${trace[-1]}
	for i in "${!trace[@]}"; do
		if ((trace[i] <= idle_kib + 2048)); then
			drop=$((i + 1))
			break
		fi
	done
	((idle_kib < load_end - 2048)) || drop=-1 # no drop to speak of
	local peak
	peak=$(rss_kib "$pid" VmHWM)
	echo "idle RSS (KiB, each second): ${trace[*]}" >>"$out"
	stop_gw "$pid"
	echo "$(cpu_us_per_req "$M_TICKS" "$reqs") $peak $load_end $idle_kib $(((t1 - t0) * 1000 / CLK_TCK)) $secs $M_OTHER $errs $drop" \
		>>"$TMP/out/$t.samples"
	log "  -> CPU $(cpu_us_per_req "$M_TICKS" "$reqs") µs/req, peak $((peak / 1024)) MiB, after load $((load_end / 1024)) MiB, idle $((idle_kib / 1024)) MiB (from ${drop}s), fill ${secs}s, errors $errs, other load ${M_OTHER}%"
}

# ---------------------------------------------------------------- measuring
wait_quiet
mkdir -p "$TMP/out"
for run in $(seq 1 "$RUNS"); do
	for k in "${!TARGETS[@]}"; do
		t=${TARGETS[$(((k + run - 1) % ${#TARGETS[@]}))]}
		[[ -z "${WHY[$t]}" ]] || continue
		log "run $run/$RUNS: ${LABEL[$t]}: $N objects of $OBJ B through a $((M / MIB)) MiB cache, then ${IDLE}s idle"
		one_run "$t" "$run" || log "run $run of ${LABEL[$t]} failed"
	done
done

# ---------------------------------------------------------------- report
MISSING=0
declare -A MED
for t in "${TARGETS[@]}"; do
	[[ -s "$TMP/out/$t.samples" ]] || continue
	used_samples "$TMP/out/$t.samples" "$TMP/out/$t.used" 7
	for c in 1 2 3 4 5 6 9; do
		MED[$t.$c]=$(median "$c" "$TMP/out/$t.used")
	done
done

# row TARGET REF prints one table row; ratios are to REF's medians.
row() {
	local t=$1 ref=$2 f="$TMP/out/$1.used"
	if [[ ! -s "$f" ]]; then
		MISSING=1
		echo "| ${LABEL[$t]} | ${WHY[$t]:-not measured: every run failed} | | | | | | | | | |"
		return
	fi
	awk -v l="${LABEL[$t]}" -v c="${MED[$t.1]}" -v p="${MED[$t.2]}" -v e="${MED[$t.3]}" -v i="${MED[$t.4]}" \
		-v ic="${MED[$t.5]}" -v d="${MED[$t.9]}" -v b="$BOUND" -v er="$(max_col 8 "$f")" -v o="$(max_col 7 "$f")" \
		-v u="$(wc -l <"$f")/$(wc -l <"$TMP/out/$t.samples")" 'BEGIN {
		m = 1024 * 1024
		within = (p * 1024 <= b && i * 1024 <= b) ? "yes" : "no"
		drop = (d < 0) ? "–" : sprintf("%d", d)
		printf "| %s | %.1f | %.0f | %.0f | %.0f | %s | %s | %d | %d | %d | %s |\n", l, c, p / 1024, e / 1024, i / 1024, drop, within, ic, er, o, u }'
}

# ratio_row TARGET REF prints TARGET's medians over REF's.
ratio_row() {
	local t=$1 ref=$2
	[[ -s "$TMP/out/$t.used" && -s "$TMP/out/$ref.used" ]] || return 0
	awk -v l="${LABEL[$t]} ÷ ${LABEL[$ref]}" -v c="${MED[$t.1]}" -v p="${MED[$t.2]}" -v i="${MED[$t.4]}" \
		-v rc="${MED[$ref.1]}" -v rp="${MED[$ref.2]}" -v ri="${MED[$ref.4]}" 'BEGIN {
		printf "| %s | %.2f | %.2f | %.2f |\n", l, c / rc, p / rp, i / ri }'
}

SECTION="$BENCH_DIR/results/70-memory.md"
mkdir -p "$BENCH_DIR/results"
{
	echo "## Memory (a $((M / MIB)) MiB cache filled ten times over, then idle)"
	echo
	echo "Measured $MEASURE_START to $(date -u "+%H:%M:%S UTC") by \`bench/memory.sh\`:"
	echo "$RUNS run(s) per configuration, each in a fresh process. Pinning: $PIN_NOTE."
	echo
	echo "- gateway: \`gateway proxy --cache-size $MAX_SIZE --access-log off\` in front of \`bench/origin\`"
	echo "- load: \`bench/fill\`, $CONNS connections, $N distinct URLs \`/cacheable/$OBJ?i=K\`"
	echo "  (each a cacheable 64 KiB object, \`public, max-age=3600\`), each requested once:"
	echo "  $((N * OBJ / MIB)) MiB, ten times max_size; then ${IDLE} s without a request"
	echo "- bound: max_size × 1.25 + 50 MiB = $((BOUND / MIB)) MiB"
	env_lines
	echo
	echo "| configuration | CPU µs/req (fill) | peak RSS MiB | RSS after load MiB | idle RSS MiB (${IDLE} s) | idle RSS from s | within bound | idle CPU ms | errors | other load % | runs |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |"
	for t in "${TARGETS[@]}"; do row "$t" new; done
	echo
	echo "Same-run ratios of the medians (below 1: less than the previous rule):"
	echo
	echo "| ratio | CPU µs/req | peak RSS | idle RSS |"
	echo "| --- | ---: | ---: | ---: |"
	ratio_row new oldlimit
	ratio_row new prev
	echo
	note_medians
	echo "CPU µs/req is the gateway's user+system time during the fill divided by"
	echo "its requests (every one a miss: the origin's 64 KiB body is stored, or"
	echo "refused by ristretto's admission, and garbage once evicted). peak RSS is"
	echo "VmHWM at the end of the run (the process's whole life), RSS after load is"
	echo "VmRSS as the fill ends, idle RSS VmRSS after ${IDLE} s without a request;"
	echo "\"idle RSS from s\" is the second of idle from which RSS stayed within 2 MiB"
	echo "of that (– when it never dropped). idle CPU ms is the gateway's CPU over"
	echo "the idle seconds (the return of memory included). within bound: peak and"
	echo "idle RSS both at most $((BOUND / MIB)) MiB. errors: failed requests or"
	echo "bodies of the wrong length (the most of any run). other load % is the"
	echo "most CPU, in % of one core, that processes outside the bench used during"
	echo "any used fill; a fill above $OTHER_MAX% is not repeated (the process has"
	echo "filled its cache) but left out of the medians when others are not."
} >"$SECTION"

publish_section "$SECTION" "some configurations were not measured; see the table"
