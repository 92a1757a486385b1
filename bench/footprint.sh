#!/usr/bin/env bash
# Footprint benchmark: the resident memory of a fresh server at idle,
# after LOAD seconds of the hit benchmark (wrk, 50 connections, one
# cached 1 KiB URL: a working set of a few KiB), and AFTER seconds after
# the load ends; the CPU per hit of that load; and the memory each idle
# keep-alive client connection costs (bench/idleconns holds IDLE_CONNS of
# them). For
#   - gateway proxy --profile sidecar (its default) and --profile edge,
#     the two sides of the memory-for-CPU trade (docs/operations.md);
#   - nginx (1 worker, proxy_cache on tmpfs) and Varnish (malloc).
# Then the trade itself where it is largest, pass-through (every request
# to the origin, more allocation per request than a hit): sidecar and
# edge alternated, CPU per request and RSS at the end of each run.
#
# Usage: bash bench/footprint.sh
# Knobs (environment):
#   RUNS=3            runs per row (each a fresh process); the median is reported
#   LOAD=60           seconds of hit load
#   AFTER=60          seconds of idle after the load before RSS is read again
#   IDLE_CONNS=10000  idle client connections (fewer if the fd limit cannot allow them)
#   CONN_HOLD=10      seconds the connections are held; RSS is read 3 s into it
#   PASS=20s          length of each pass-through run of the trade rows
#   QUICK=1           smoke test: RUNS=1 LOAD=10 AFTER=15 IDLE_CONNS=2000 PASS=5s
#   PORT_BASE=24500   ports +0 origin, +1 gateway, +2 nginx, +3 Varnish, +4 gateway admin
#   LOAD_CPU=0 PROXY_CPU=1  cores for wrk+origin and the server under test
#   KEEP_TMP=1        keep the temp dir; OTHER_MAX, RETRIES, QUIET_WAIT as in run.sh
#
# Writes bench/results/75-footprint.md and reassembles bench/RESULTS.md.
# Exits 2 when some row could not be measured, 1 on a harness error.

# PID_NAME variables are set by start() (lib.sh) through eval.
# shellcheck disable=SC2153
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
if [[ "${QUICK:-0}" == "1" ]]; then
	RUNS="${RUNS:-1}"
	LOAD="${LOAD:-10}"
	AFTER="${AFTER:-15}"
	IDLE_CONNS="${IDLE_CONNS:-2000}"
	PASS="${PASS:-5s}"
fi
bench_knobs
LOAD="${LOAD:-60}"
AFTER="${AFTER:-60}"
IDLE_CONNS="${IDLE_CONNS:-10000}"
CONN_HOLD="${CONN_HOLD:-10}"
PASS="${PASS:-20s}"
# Below the kernel's ephemeral range (32768-60999 by default): the idle
# connections take 10,000 local ports there, and a server started after
# them could find its own port taken.
PORT_BASE="${PORT_BASE:-24500}"
for v in LOAD AFTER IDLE_CONNS CONN_HOLD; do
	[[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v=${!v}: must be a positive integer"
done
((CONN_HOLD >= 5)) || die "CONN_HOLD=$CONN_HOLD: at least 5 (RSS is read 3 s in)"
MIB=1048576
CACHE=64MiB # the gateway's --cache-size default; nginx and Varnish get as much
HIT_PATH=/cacheable/1024

P_ORIGIN=$PORT_BASE
P_GW=$((PORT_BASE + 1))
P_NGINX=$((PORT_BASE + 2))
P_VARNISH=$((PORT_BASE + 3))
P_ADMIN=$((PORT_BASE + 4))

TARGETS=(sidecar edge nginx varnish)
declare -A LABEL=(
	[sidecar]="gateway proxy --profile sidecar"
	[edge]="gateway proxy --profile edge"
	[nginx]="nginx 1 worker, proxy_cache"
	[varnish]="Varnish, malloc"
)
declare -A PORT=([sidecar]=$P_GW [edge]=$P_GW [nginx]=$P_NGINX [varnish]=$P_VARNISH)
declare -A WHY=([sidecar]="" [edge]="" [nginx]="" [varnish]="")

# ---------------------------------------------------------------- tools
bench_tools
bench_pinning
bench_tmp
# Each idle connection is a descriptor in the client and one in the
# server. Raise the soft limit as far as the hard one allows; with less
# than the connections need, hold fewer and say so.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
CONN_NOTE=""
if [[ "$NOFILE" != unlimited ]] && ((IDLE_CONNS > NOFILE - 500)); then
	CONN_NOTE="the descriptor limit (ulimit -n) is $NOFILE: $((NOFILE - 500)) connections, not $IDLE_CONNS"
	IDLE_CONNS=$((NOFILE - 500))
	log "$CONN_NOTE"
fi
VARNISH_VERSION=$("$VARNISHD_BIN" -V 2>&1 | head -n1)
LABEL[varnish]="Varnish $(sed -n 's/.*varnish-\([0-9.]*\).*/\1/p' <<<"$VARNISH_VERSION"), malloc"
NGINX_VERSION=$("$NGINX_BIN" -v 2>&1 | sed -n 's#.*nginx/\([0-9.]*\).*#\1#p')
LABEL[nginx]="nginx $NGINX_VERSION, 1 worker, proxy_cache"
if [[ -d /dev/shm && -w /dev/shm ]]; then
	SHM="$(mktemp -d /dev/shm/gwbench-fp.XXXXXX)"
	chmod 755 "$SHM"
	EXTRA_RM+=("$SHM")
else
	SHM="$TMP"
fi
for p in $P_ORIGIN $P_GW $P_NGINX $P_VARNISH $P_ADMIN; do
	port_free "$p" || die "port 127.0.0.1:$p is in use; set PORT_BASE to another range"
done

# ---------------------------------------------------------------- build
log "building origin and idleconns"
(cd "$REPO_DIR" && go build -o "$TMP/origin" ./bench/origin && go build -o "$TMP/idleconns" ./bench/idleconns) ||
	die "building bench/origin or bench/idleconns failed"
log "building gateway"
if ! (cd "$REPO_DIR" && go build -o "$TMP/gateway" .) >"$TMP/gateway-build.log" 2>&1; then
	tail -n 30 "$TMP/gateway-build.log" >&2 || true
	WHY[sidecar]="not measured: gateway did not build ($(one_line "$TMP/gateway-build.log"))"
	WHY[edge]=${WHY[sidecar]}
elif ! "$TMP/gateway" proxy --profile edge --help >/dev/null 2>&1; then
	WHY[sidecar]="not measured: this gateway has no --profile flag"
	WHY[edge]=${WHY[sidecar]}
fi

start ORIGIN "$TMP/origin.log" "${PIN_LOAD[@]}" "$TMP/origin" -addr "127.0.0.1:$P_ORIGIN"
wait_http origin "$PID_ORIGIN" "$TMP/origin.log" "http://127.0.0.1:$P_ORIGIN/" || die "origin did not start"

# ---------------------------------------------------------------- servers
# The nginx of cache.sh, with room for the idle connections.
mkdir -p "$TMP/nginx/logs"
{
	nginx_conf_head | sed "s/worker_connections [0-9]*;/worker_connections $((IDLE_CONNS + 1000));/; s/^worker_processes 1;/worker_processes 1;\nworker_rlimit_nofile $((IDLE_CONNS + 1100));/"
	cat <<EOF
    proxy_cache_path $SHM/nginx-cache levels=1:2 keys_zone=bench:10m max_size=64m use_temp_path=off;
    server {
        listen 127.0.0.1:$P_NGINX;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache bench;
            proxy_cache_lock on;
            add_header X-Cache-Status \$upstream_cache_status always;
        }
    }
}
EOF
} >"$TMP/nginx/nginx.conf"

if [[ $(id -u) -eq 0 ]] && id varnish >/dev/null 2>&1 && id vcache >/dev/null 2>&1; then
	VARNISH_JAIL="unix,user=varnish,workuser=vcache"
else
	VARNISH_JAIL="none"
fi
# timeout_idle (5 s by default) would close the idle connections before
# they are counted.
# shellcheck disable=SC2054  # the commas belong to the -s argument
VARNISH_ARGS=(-F -j "$VARNISH_JAIL" -n "$SHM/varnish" -a "127.0.0.1:$P_VARNISH" -b "127.0.0.1:$P_ORIGIN"
	-T none -s malloc,64m -p timeout_idle=120)

# server_pids TARGET lists the processes of the running TARGET: the
# gateway, or nginx's master and worker, or Varnish's manager and child.
# shellcheck disable=SC2046
server_pids() {
	case "$1" in
	sidecar | edge) echo "$PID_SRV" ;;
	*) echo "$PID_SRV" $(child_pids "$PID_SRV") ;;
	esac
}

# mem_kib FIELD PIDS... sums a field of /proc/PID/status (VmRSS, VmHWM)
# or, for Pss, of /proc/PID/smaps_rollup, in KiB.
mem_kib() {
	local f=$1 p total=0 v file
	shift
	for p in "$@"; do
		file="/proc/$p/status"
		[[ "$f" != Pss ]] || file="/proc/$p/smaps_rollup"
		v=$(awk -v f="$f:" '$1 == f { print $2 }' "$file" 2>/dev/null || true)
		total=$((total + ${v:-0}))
	done
	echo "$total"
}

# start_target TARGET starts a fresh server as SRV and waits until a
# second request for HIT_PATH is a hit. Returns non-zero, with WHY_RUN
# set, when it does not come up.
start_target() {
	local t=$1 url="http://127.0.0.1:${PORT[$1]}$HIT_PATH" hdr="$TMP/hit.hdr"
	WHY_RUN=""
	case "$t" in
	sidecar | edge)
		# GOMEMLIMIT and GOGC of the caller's environment must not leak in.
		start SRV "$TMP/$t.log" env -u GOMEMLIMIT -u GOGC "${PIN_PROXY[@]}" "$TMP/gateway" proxy --profile "$t" \
			--listen "127.0.0.1:$P_GW" --to "http://127.0.0.1:$P_ORIGIN" --cache-size "$CACHE" \
			--admin "127.0.0.1:$P_ADMIN" --access-log off
		;;
	nginx)
		rm -rf "$SHM/nginx-cache"
		start SRV "$TMP/nginx/stdout.log" "${PIN_PROXY[@]}" "$NGINX_BIN" -p "$TMP/nginx/" -c "$TMP/nginx/nginx.conf"
		PARENTS+=("$PID_SRV")
		;;
	varnish)
		start SRV "$TMP/varnish.log" "${PIN_PROXY[@]}" "$VARNISHD_BIN" "${VARNISH_ARGS[@]}"
		PARENTS+=("$PID_SRV")
		;;
	esac
	local logf="$TMP/$t.log"
	[[ $t != nginx ]] || logf="$TMP/nginx/logs/error.log"
	if ! wait_http "${LABEL[$t]}" "$PID_SRV" "$logf" "http://127.0.0.1:${PORT[$t]}/"; then
		WHY_RUN="did not start ($(one_line "$logf"))"
		return 1
	fi
	curl -s -o /dev/null "$url"
	curl -s -D "$hdr" -o /dev/null "$url"
	if ! grep -qiE '^(cache-status:.*;[[:space:]]*hit|x-cache-status: hit|age: [1-9]|x-varnish: [0-9]+ [0-9]+)' "$hdr"; then
		WHY_RUN="the second request for $HIT_PATH was not a hit"
		return 1
	fi
}

# stop_target stops the running server (by PID, its children with it)
# and waits for it to go.
stop_target() {
	local p all
	all=$(server_pids "$T_RUNNING")
	kill -TERM "$PID_SRV" 2>/dev/null || true
	for _ in $(seq 1 100); do
		kill -0 "$PID_SRV" 2>/dev/null || break
		sleep 0.1
	done
	for p in $all; do kill -KILL "$p" 2>/dev/null || true; done
	wait "$PID_SRV" 2>/dev/null || true
	local keep=()
	for p in "${PIDS[@]}"; do [[ "$p" == "$PID_SRV" ]] || keep+=("$p"); done
	PIDS=("${keep[@]}")
	keep=()
	for p in "${PARENTS[@]}"; do [[ "$p" == "$PID_SRV" ]] || keep+=("$p"); done
	PARENTS=("${keep[@]}")
}

# hit_load is the measured load: wrk on the hit URL for LOAD seconds.
hit_load() {
	timeout $((LOAD + 60)) "${PIN_LOAD[@]}" wrk -t1 -c50 --latency -d "${LOAD}s" "http://127.0.0.1:${PORT[$T_RUNNING]}$HIT_PATH"
}

# footprint_run TARGET RUN appends: idle_rss idle_pss rss_end hwm
# rss_after cpu_us_per_hit rps other errors.
footprint_run() {
	local t=$1 run=$2 out="$TMP/out/$1.load$2.txt" pids idle idle_pss end hwm after res
	T_RUNNING=$t
	if ! start_target "$t"; then
		log "  ${LABEL[$t]}: $WHY_RUN"
		WHY[$t]="not measured: $WHY_RUN"
		stop_target
		return 1
	fi
	sleep 5 # what starting left behind settles
	pids=$(server_pids "$t")
	# shellcheck disable=SC2086
	idle=$(mem_kib VmRSS $pids)
	# shellcheck disable=SC2086
	idle_pss=$(mem_kib Pss $pids)
	local RETRIES=0 # each run a fresh process: a disturbed run is kept and marked
	measure "$out" "$pids" : hit_load
	pids=$(server_pids "$t")
	# shellcheck disable=SC2086
	end=$(mem_kib VmRSS $pids)
	if ! res=$(parse_wrk "$out"); then
		log "  could not parse wrk output for ${LABEL[$t]}"
		stop_target
		return 1
	fi
	local -a trace=()
	for _ in $(seq 1 "$AFTER"); do
		sleep 1
		# shellcheck disable=SC2086
		trace+=("$(mem_kib VmRSS $pids)")
	done
	after=${trace[-1]}
	# shellcheck disable=SC2086
	hwm=$(mem_kib VmHWM $pids)
	echo "RSS after the load (KiB, each second): ${trace[*]}" >>"$out"
	stop_target
	read -r rps reqs _ _ errs <<<"$res"
	echo "$idle $idle_pss $end $hwm $after $(cpu_us_per_req "$M_TICKS" "$reqs") $rps $M_OTHER $errs" >>"$TMP/out/$t.samples"
	log "  -> idle $((idle / 1024)) MiB, after ${LOAD}s of hits $((end / 1024)) MiB (peak $((hwm / 1024))), ${AFTER}s later $((after / 1024)) MiB; $(cpu_us_per_req "$M_TICKS" "$reqs") µs/hit, $rps req/s, other load ${M_OTHER}%"
}

# conns_run TARGET RUN appends: idle_rss held_rss open alive bytes_per_conn
conns_run() {
	local t=$1 out="$TMP/out/$1.conns$2.txt" pids idle held open alive
	T_RUNNING=$t
	if ! start_target "$t"; then
		stop_target
		return 1
	fi
	sleep 3
	pids=$(server_pids "$t")
	# shellcheck disable=SC2086
	idle=$(mem_kib VmRSS $pids)
	"${PIN_LOAD[@]}" "$TMP/idleconns" -addr "127.0.0.1:${PORT[$t]}" -path "$HIT_PATH" -n "$IDLE_CONNS" \
		-hold "${CONN_HOLD}s" -max-time 2m >"$out" 2>&1 &
	local cpid=$!
	for _ in $(seq 1 300); do
		grep -q '^open=' "$out" 2>/dev/null && break
		kill -0 "$cpid" 2>/dev/null || break
		sleep 0.5
	done
	sleep 3
	pids=$(server_pids "$t")
	# shellcheck disable=SC2086
	held=$(mem_kib VmRSS $pids)
	wait "$cpid" || true
	stop_target
	open=$(sed -n 's/^open=\([0-9]*\).*/\1/p' "$out")
	alive=$(sed -n 's/.*alive=\([0-9]*\).*/\1/p' "$out")
	if [[ -z "$open" || "$open" == 0 ]]; then
		log "  ${LABEL[$t]}: no connection held; client said: $(one_line "$out")"
		return 1
	fi
	echo "$idle $held $open ${alive:-0} $(((held - idle) * 1024 / open))" >>"$TMP/out/$t.conns"
	log "  -> $open idle connections ($alive still open at the end): RSS $((idle / 1024)) -> $((held / 1024)) MiB, $(((held - idle) * 1024 / open)) B each"
}

# pass_load is one trade run: wrk on the origin's no-store path.
pass_load() {
	timeout $(($(seconds "$PASS") + 60)) "${PIN_LOAD[@]}" wrk -t1 -c50 --latency -d "$PASS" "http://127.0.0.1:$P_GW/"
}

# trade_run TARGET RUN appends: cpu_us_per_req rps rss_end hwm other
trade_run() {
	local t=$1 out="$TMP/out/$1.pass$2.txt" res
	T_RUNNING=$t
	start_target "$t" || {
		stop_target
		return 1
	}
	local RETRIES=0
	measure "$out" "$PID_SRV" : pass_load
	local end hwm
	end=$(mem_kib VmRSS "$PID_SRV")
	hwm=$(mem_kib VmHWM "$PID_SRV")
	stop_target
	res=$(parse_wrk "$out") || return 1
	read -r rps reqs _ _ _ <<<"$res"
	echo "$(cpu_us_per_req "$M_TICKS" "$reqs") $rps $end $hwm $M_OTHER" >>"$TMP/out/$t.pass"
	log "  -> pass-through: $(cpu_us_per_req "$M_TICKS" "$reqs") µs/req, $rps req/s, RSS $((end / 1024)) MiB (peak $((hwm / 1024)))"
}

# ---------------------------------------------------------------- measuring
wait_quiet
mkdir -p "$TMP/out"
for run in $(seq 1 "$RUNS"); do
	for k in "${!TARGETS[@]}"; do
		t=${TARGETS[$(((k + run - 1) % ${#TARGETS[@]}))]}
		[[ -z "${WHY[$t]}" ]] || continue
		log "run $run/$RUNS: ${LABEL[$t]}: idle, ${LOAD}s of hits, ${AFTER}s idle"
		footprint_run "$t" "$run" || log "run $run of ${LABEL[$t]} failed"
		[[ -z "${WHY[$t]}" ]] || continue
		log "run $run/$RUNS: ${LABEL[$t]}: $IDLE_CONNS idle connections"
		conns_run "$t" "$run" || log "connections run $run of ${LABEL[$t]} failed"
	done
	for t in sidecar edge; do
		[[ -z "${WHY[$t]}" ]] || continue
		log "run $run/$RUNS: ${LABEL[$t]}: pass-through for $PASS"
		trade_run "$t" "$run" || log "pass-through run $run of ${LABEL[$t]} failed"
	done
done

# ---------------------------------------------------------------- report
MISSING=0
declare -A MED
for t in "${TARGETS[@]}"; do
	if [[ -s "$TMP/out/$t.samples" ]]; then
		used_samples "$TMP/out/$t.samples" "$TMP/out/$t.used" 8
		for c in 1 2 3 4 5 6 7; do MED[$t.f$c]=$(median "$c" "$TMP/out/$t.used"); done
	fi
	if [[ -s "$TMP/out/$t.conns" ]]; then
		for c in 1 2 3 4 5; do MED[$t.c$c]=$(median "$c" "$TMP/out/$t.conns"); done
	fi
	if [[ -s "$TMP/out/$t.pass" ]]; then
		used_samples "$TMP/out/$t.pass" "$TMP/out/$t.passused" 5
		for c in 1 2 3 4; do MED[$t.p$c]=$(median "$c" "$TMP/out/$t.passused"); done
	fi
done

# footprint_row TARGET: idle, after load, AFTER s later (MiB), peak, PSS
# idle, CPU µs/hit, req/s, and the targets (gateway rows only).
footprint_row() {
	local t=$1 f="$TMP/out/$1.used"
	if [[ ! -s "$f" ]]; then
		MISSING=1
		echo "| ${LABEL[$t]} | ${WHY[$t]:-not measured: every run failed} | | | | | | | | |"
		return
	fi
	awk -v l="${LABEL[$t]}" -v i="${MED[$t.f1]}" -v ip="${MED[$t.f2]}" -v e="${MED[$t.f3]}" -v h="${MED[$t.f4]}" \
		-v a="${MED[$t.f5]}" -v c="${MED[$t.f6]}" -v r="${MED[$t.f7]}" -v gw="$([[ $t == sidecar || $t == edge ]] && echo 1 || echo 0)" \
		-v o="$(max_col 8 "$f")" -v er="$(max_col 9 "$f")" -v u="$(wc -l <"$f")/$(wc -l <"$TMP/out/$t.samples")" 'BEGIN {
		k = 1024
		tg = "–"
		if (gw) tg = sprintf("%s / %s / %s", (i / k < 25) ? "yes" : "no", (e / k <= 32) ? "yes" : "no", (a <= i + 8 * k) ? "yes" : "no")
		printf "| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %s | %.1f | %.0f | %d | %d | %s |\n", l, i / k, ip / k, e / k, h / k, a / k, tg, c, r, er, o, u }'
}

conns_row() {
	local t=$1
	if [[ ! -s "$TMP/out/$t.conns" ]]; then
		echo "| ${LABEL[$t]} | not measured | | | | |"
		return
	fi
	awk -v l="${LABEL[$t]}" -v i="${MED[$t.c1]}" -v h="${MED[$t.c2]}" -v n="${MED[$t.c3]}" -v al="$(awk 'NR == 1 || $4 < m { m = $4 } END { print m }' "$TMP/out/$t.conns")" \
		-v b="${MED[$t.c5]}" -v u="$(wc -l <"$TMP/out/$t.conns")" 'BEGIN {
		printf "| %s | %d | %.1f | %.1f | %.1f | %d | %s |\n", l, n, i / 1024, h / 1024, b / 1024, al, u }'
}

pass_row() {
	local t=$1
	if [[ ! -s "$TMP/out/$t.passused" ]]; then
		echo "| ${LABEL[$t]} | not measured | | | |"
		return
	fi
	awk -v l="${LABEL[$t]}" -v c="${MED[$t.p1]}" -v r="${MED[$t.p2]}" -v e="${MED[$t.p3]}" -v h="${MED[$t.p4]}" \
		-v o="$(max_col 5 "$TMP/out/$t.passused")" -v u="$(wc -l <"$TMP/out/$t.passused")/$(wc -l <"$TMP/out/$t.pass")" 'BEGIN {
		printf "| %s | %.1f | %.0f | %.1f | %.1f | %d | %s |\n", l, c, r, e / 1024, h / 1024, o, u }'
}

# ratio LINE_LABEL A B KEY...: A's medians over B's for each KEY.
ratio() {
	local l=$1 a=$2 b=$3 k line="| $1 |"
	shift 3
	for k in "$@"; do
		if [[ -z "${MED[$a.$k]:-}" || -z "${MED[$b.$k]:-}" ]]; then
			line+=" – |"
		else
			line+=$(awk -v x="${MED[$a.$k]}" -v y="${MED[$b.$k]}" 'BEGIN { printf " %.2f |", (y > 0) ? x / y : 0 }')
		fi
	done
	echo "$line"
}

SECTION="$BENCH_DIR/results/75-footprint.md"
mkdir -p "$BENCH_DIR/results"
{
	echo "## Footprint (idle, after ${LOAD} s of hits, ${AFTER} s later; idle connections)"
	echo
	echo "Measured $MEASURE_START to $(date -u "+%H:%M:%S UTC") by \`bench/footprint.sh\`:"
	echo "$RUNS run(s) per row, each in a fresh process. Pinning: $PIN_NOTE."
	echo
	echo "- gateway: \`gateway proxy --profile P --cache-size $CACHE --access-log off\` in front of \`bench/origin\`"
	echo "- nginx: 1 worker, \`proxy_cache\` (max_size 64m) on tmpfs, as in \`bench/cache.sh\`; Varnish: \`-s malloc,64m\`, \`timeout_idle=120\`"
	echo "- load: \`wrk -t1 -c50 -d${LOAD}s\` on \`$HIT_PATH\` (one cacheable 1 KiB object: the working set is a few KiB)"
	echo "- idle connections: \`bench/idleconns\`, $IDLE_CONNS keep-alive HTTP/1.1 connections, one GET each, then held${CONN_NOTE:+ ($CONN_NOTE)}"
	env_lines
	echo "- $NGINX_VERSION nginx, $VARNISH_VERSION"
	echo
	echo "### Resident memory and CPU per hit"
	echo
	echo "| server | idle RSS MiB | idle PSS MiB | RSS after load MiB | peak RSS MiB | RSS ${AFTER} s later MiB | targets: idle / after load / returned | CPU µs/hit | req/s | errors | other load % | runs |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
	for t in "${TARGETS[@]}"; do footprint_row "$t"; done
	echo
	echo "### Idle client connections"
	echo
	echo "| server | connections | RSS before MiB | RSS holding them MiB | KiB per connection | still open at the end (least) | runs |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
	for t in "${TARGETS[@]}"; do conns_row "$t"; done
	echo
	echo "### The trade: pass-through, $PASS per run"
	echo
	echo "| gateway | CPU µs/req | req/s | RSS at the end MiB | peak RSS MiB | other load % | runs |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
	for t in sidecar edge; do pass_row "$t"; done
	echo
	echo "Same-run ratios of the medians, sidecar ÷ edge:"
	echo
	echo "| | CPU µs/hit | RSS after hits | pass-through CPU µs/req | pass-through peak RSS |"
	echo "| --- | ---: | ---: | ---: | ---: |"
	ratio "sidecar ÷ edge" sidecar edge f6 f3 p1 p4
	echo
	note_medians
	echo "RSS is VmRSS summed over the server's processes (nginx: master and worker;"
	echo "Varnish: manager and child), read 5 s after the server answered its first"
	echo "hit (idle), as the load ends (after load), as VmHWM (peak) and ${AFTER} s after"
	echo "the load. PSS (/proc/PID/smaps_rollup) counts each page shared between"
	echo "processes (nginx's and Varnish's) once. The targets apply to the gateway:"
	echo "idle under 25 MiB; after load at most the working set (a few KiB) plus 32 MiB;"
	echo "returned: ${AFTER} s after the load within 8 MiB of idle. CPU µs/hit is the"
	echo "server's user+system time over the load divided by wrk's requests. Idle"
	echo "connections: RSS read 3 s after the last connection got its answer, minus"
	echo "RSS before; \"still open\" checks that the server had not closed them."
	echo "The pass-through rows send every request to the origin (\`Cache-Control:"
	echo "no-store\`), where a request allocates more than a hit, so that the GC floor's"
	echo "trade shows most. other load % is the most CPU, in % of one core, that"
	echo "processes outside the bench used during any used run; runs above $OTHER_MAX% are"
	echo "left out of the medians when the row has others."
} >"$SECTION"

publish_section "$SECTION" "some rows were not measured; see the table"
