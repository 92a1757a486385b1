#!/usr/bin/env bash
# Pass-through benchmark: the gateway next to nginx, a plain Go
# httputil.ReverseProxy, the least any proxy built on net/http can do
# (bench/floor) and the origin itself, over HTTP/1.1 (wrk) and cleartext
# HTTP/2 (h2load), all on loopback.
#
# Usage: bash bench/run.sh
# Knobs (environment):
#   DURATION=10s   length of each measured run (wrk -d / h2load -D)
#   RUNS=3         measured runs per target; the median is reported
#   SIZE=1024      origin response body in bytes
#   QUICK=1        smoke test: DURATION=2s RUNS=1
#   PORT_BASE=28000  first of the loopback ports used (see below)
#   LOAD_CPU=0 PROXY_CPU=1  cores for load generator+origin and server under test
#   KEEP_TMP=1     keep the temp dir (configs, logs) for inspection
#   OTHER_MAX=15   redo a run when other processes used more than this % of
#                  a core during it (the machine is shared); RETRIES=2 times
#   QUIET_WAIT=300 seconds to wait, before measuring, for the machine to be
#                  quiet (other load under OTHER_MAX); then it measures anyway
#
# Writes bench/results/10-passthrough.md (10-passthrough-<SIZE>B.md for a
# non-default SIZE) and reassembles bench/RESULTS.md
# from bench/results/*.md. Exits 2 when some target could not be measured
# (its rows say why), 1 on a harness error.

# PID_NAME variables are set by start() (lib.sh) through eval.
# shellcheck disable=SC2153
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
bench_knobs
SIZE="${SIZE:-1024}"
CONNS=50      # fixed: the section heading promises 50 connections
STREAMS=10    # h2load concurrent streams per connection
PORT_BASE="${PORT_BASE:-28000}"
[[ "$SIZE" =~ ^[0-9]+$ ]] || die "SIZE=$SIZE: must be a byte count"

# Port plan, all on 127.0.0.1.
P_ORIGIN=$PORT_BASE                 # origin that the proxies forward to (load core)
P_NGINX=$((PORT_BASE + 1))          # nginx, HTTP/1.1
P_GW=$((PORT_BASE + 2))             # gateway, http1 upstream
P_PLAIN=$((PORT_BASE + 3))          # plainproxy
P_ORIGIN_DIRECT=$((PORT_BASE + 4))  # origin measured directly (proxy core)
P_FLOOR=$((PORT_BASE + 5))          # floor, HTTP/1.1 upstream leg
P_GW_USER=$((PORT_BASE + 6))        # gateway proxy --to, as a user runs it
P_GW_NC=$((PORT_BASE + 7))          # gateway proxy --to --no-cache --no-compress
P_NGINX_H2=$((PORT_BASE + 11))      # nginx, h2c prior knowledge
P_GW_H2UP=$((PORT_BASE + 12))       # gateway, h2c upstream
P_FLOOR_H2UP=$((PORT_BASE + 13))    # floor, h2c upstream leg
P_GW_ADMIN=$((PORT_BASE + 1092))
P_GW_H2UP_ADMIN=$((PORT_BASE + 1093))
P_GW_USER_ADMIN=$((PORT_BASE + 1094))
P_GW_NC_ADMIN=$((PORT_BASE + 1095))

# ---------------------------------------------------------------- tools
bench_tools
bench_pinning
bench_tmp

# ---------------------------------------------------------------- build
for p in $P_ORIGIN $P_NGINX $P_GW $P_PLAIN $P_ORIGIN_DIRECT $P_FLOOR $P_NGINX_H2 $P_GW_H2UP $P_FLOOR_H2UP $P_GW_ADMIN $P_GW_H2UP_ADMIN \
	$P_GW_USER $P_GW_NC $P_GW_USER_ADMIN $P_GW_NC_ADMIN; do
	port_free "$p" || die "port 127.0.0.1:$p is in use; set PORT_BASE to another range"
done

log "building origin, plainproxy and floor"
(cd "$REPO_DIR" && go build -o "$TMP/origin" ./bench/origin && go build -o "$TMP/plainproxy" ./bench/plainproxy &&
	go build -o "$TMP/floor" ./bench/floor) ||
	die "building bench/origin, bench/plainproxy or bench/floor failed"

GW_OK=1
GW_WHY=""
log "building gateway"
if ! (cd "$REPO_DIR" && go build -o "$TMP/gateway" .) >"$TMP/gateway-build.log" 2>&1; then
	GW_OK=0
	GW_WHY="not measured: gateway did not build"
	log "gateway build failed; its rows will be marked not measured. Build output:"
	tail -n 30 "$TMP/gateway-build.log" >&2 || true
fi

# ---------------------------------------------------------------- servers
start ORIGIN "$TMP/origin.log" "${PIN_LOAD[@]}" "$TMP/origin" -addr "127.0.0.1:$P_ORIGIN" -size "$SIZE"
wait_http origin "$PID_ORIGIN" "$TMP/origin.log" "http://127.0.0.1:$P_ORIGIN/" || die "origin did not start"
# The origin measured directly runs on the proxy core, so its row is the
# same setup as a proxy's: one server core, one load core.
start ORIGIN_DIRECT "$TMP/origin-direct.log" "${PIN_PROXY[@]}" "$TMP/origin" -addr "127.0.0.1:$P_ORIGIN_DIRECT" -size "$SIZE"
wait_http origin-direct "$PID_ORIGIN_DIRECT" "$TMP/origin-direct.log" "http://127.0.0.1:$P_ORIGIN_DIRECT/" || die "origin (direct) did not start"

mkdir -p "$TMP/nginx/logs"
{
	nginx_conf_head
	cat <<EOF
    server {
        listen 127.0.0.1:$P_NGINX;
        # nginx 1.22: http2 without ssl is h2c with prior knowledge.
        listen 127.0.0.1:$P_NGINX_H2 http2;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_max_temp_file_size 0;
        }
    }
}
EOF
} >"$TMP/nginx/nginx.conf"
start_nginx "http://127.0.0.1:$P_NGINX/"
wait_http nginx-h2 "$PID_NGINX" "$TMP/nginx/logs/error.log" "http://127.0.0.1:$P_NGINX_H2/" --http2-prior-knowledge ||
	die "nginx h2c listener did not answer"

start PLAIN "$TMP/plainproxy.log" "${PIN_PROXY[@]}" "$TMP/plainproxy" -addr "127.0.0.1:$P_PLAIN" -to "http://127.0.0.1:$P_ORIGIN"
wait_http plainproxy "$PID_PLAIN" "$TMP/plainproxy.log" "http://127.0.0.1:$P_PLAIN/" || die "plainproxy did not start"

start FLOOR "$TMP/floor.log" "${PIN_PROXY[@]}" "$TMP/floor" -addr "127.0.0.1:$P_FLOOR" -to "127.0.0.1:$P_ORIGIN" -upstream http1
wait_http floor "$PID_FLOOR" "$TMP/floor.log" "http://127.0.0.1:$P_FLOOR/" || die "floor did not start"
start FLOOR_H2UP "$TMP/floor-h2up.log" "${PIN_PROXY[@]}" "$TMP/floor" -addr "127.0.0.1:$P_FLOOR_H2UP" -to "127.0.0.1:$P_ORIGIN" -upstream h2c
wait_http "floor (h2c upstream)" "$PID_FLOOR_H2UP" "$TMP/floor-h2up.log" "http://127.0.0.1:$P_FLOOR_H2UP/" || die "floor (h2c upstream) did not start"

# gateway_config LISTEN_PORT ADMIN_PORT UPSTREAM_PROTOCOL
gateway_config() {
	cat <<EOF
shutdown_grace: 5s
log:
  level: warn
# As nginx here (access_log off); bench/observability.sh measures its cost.
access_log:
  enabled: false
listeners:
  - address: "127.0.0.1:$1"
    h2c: true
admin:
  address: "127.0.0.1:$2"
upstreams:
  origin:
    targets: ["http://127.0.0.1:$P_ORIGIN"]
    protocol: $3
    max_idle_per_target: 256
routes:
  - path: /
    upstream: origin
EOF
}

# start_gateway NAME LISTEN ADMIN PROTOCOL: returns non-zero (after printing
# the log tail) when the instance does not come up, so the baselines still
# get measured.
start_gateway() {
	local name=$1 port=$2 admin=$3 proto=$4
	gateway_config "$port" "$admin" "$proto" >"$TMP/$name.yaml"
	start "$name" "$TMP/$name.log" "${PIN_PROXY[@]}" "$TMP/gateway" run -config "$TMP/$name.yaml"
	local pid
	eval "pid=\$PID_$name"
	wait_http "$name admin" "$pid" "$TMP/$name.log" "http://127.0.0.1:$admin/readyz" &&
		wait_http "$name" "$pid" "$TMP/$name.log" "http://127.0.0.1:$port/" || return 1
	# A broken h2c listener fails only the h2load rows (they show "load run
	# failed"), so it is a warning here rather than a reason to skip the
	# HTTP/1.1 rows.
	curl -fsS -o /dev/null --max-time 2 --http2-prior-knowledge "http://127.0.0.1:$port/" ||
		log "WARNING: $name does not answer h2c prior knowledge on :$port"
}

# start_gateway_proxy NAME LISTEN ADMIN [FLAGS...]: `gateway proxy` as a
# user runs it, with its defaults (cache and compression on, the sidecar
# memory profile, h2c on) but the access log off, as everywhere here.
start_gateway_proxy() {
	local name=$1 port=$2 admin=$3 pid
	shift 3
	start "$name" "$TMP/$name.log" "${PIN_PROXY[@]}" "$TMP/gateway" proxy -listen "127.0.0.1:$port" \
		-admin "127.0.0.1:$admin" -to "http://127.0.0.1:$P_ORIGIN" -access-log off "$@"
	eval "pid=\$PID_$name"
	wait_http "$name admin" "$pid" "$TMP/$name.log" "http://127.0.0.1:$admin/readyz" &&
		wait_http "$name" "$pid" "$TMP/$name.log" "http://127.0.0.1:$port/"
}

GW_H2UP_OK=$GW_OK
GW_H2UP_WHY=$GW_WHY
GW_USER_OK=$GW_OK
GW_USER_WHY=$GW_WHY
GW_NC_OK=$GW_OK
GW_NC_WHY=$GW_WHY
if ((GW_OK)); then
	if ! start_gateway_proxy GW_USER "$P_GW_USER" "$P_GW_USER_ADMIN"; then
		GW_USER_OK=0
		GW_USER_WHY="not measured: gateway proxy did not start"
	fi
	if ! start_gateway_proxy GW_NC "$P_GW_NC" "$P_GW_NC_ADMIN" -no-cache -no-compress; then
		GW_NC_OK=0
		GW_NC_WHY="not measured: gateway proxy --no-cache --no-compress did not start"
	fi
	if ! start_gateway GW "$P_GW" "$P_GW_ADMIN" http1; then
		GW_OK=0
		GW_WHY="not measured: gateway (http1 upstream) did not start"
		log "$GW_WHY"
	fi
	if ! start_gateway GW_H2UP "$P_GW_H2UP" "$P_GW_H2UP_ADMIN" h2c; then
		GW_H2UP_OK=0
		GW_H2UP_WHY="not measured: gateway (h2c upstream) did not start"
		log "$GW_H2UP_WHY"
	fi
fi

# ---------------------------------------------------------------- measuring
# server_pids TARGET lists the processes whose CPU is charged to TARGET.
# shellcheck disable=SC2046
server_pids() {
	case "$1" in
	origin) echo "$PID_ORIGIN_DIRECT" ;;
	nginx | nginx_h2) echo "$PID_NGINX" $(child_pids "$PID_NGINX") ;;
	gw) echo "$PID_GW" ;;
	gw_h2up) echo "$PID_GW_H2UP" ;;
	gw_user) echo "$PID_GW_USER" ;;
	gw_nc) echo "$PID_GW_NC" ;;
	plain) echo "$PID_PLAIN" ;;
	floor) echo "$PID_FLOOR" ;;
	floor_h2up) echo "$PID_FLOOR_H2UP" ;;
	esac
}

# parse_h2load OUT prints: rps requests p50_us p99_us errors. h2load has no
# percentiles of its own; they come from its per-request log.
parse_h2load() {
	local out=$1 rps reqs p50 p99 errs
	rps=$(awk '/^finished in/ {print $4}' "$out")
	reqs=$(awk '/^requests:/ {print $6}' "$out")  # "done"
	errs=$(awk '
		/^requests:/ {e += $10 + $12 + $14}  # failed, errored, timeout
		/^status codes:/ {e += $7 + $9}
		END {print e + 0}' "$out")
	[[ -n "$rps" && -n "$reqs" && -s "$out.reqlog" ]] || return 1
	read -r p50 p99 < <(cut -f3 "$out.reqlog" | sort -n | awk '
		{v[NR] = $1}
		END {
			if (NR == 0) { print "nan nan"; exit }
			i50 = int(NR * 0.50); if (i50 < 1) i50 = 1
			i99 = int(NR * 0.99); if (i99 < 1) i99 = 1
			print v[i50], v[i99] }')
	rm -f "$out.reqlog"
	echo "$rps $reqs $p50 $p99 $errs"
}

# Row table: id|target label|protocol (client → upstream)|tool|url|status
# tool wrkd is wrk asking for a new URL each request (distinct.lua).
USER_LABEL='`gateway proxy`, defaults'
NC_LABEL='`gateway proxy --no-cache --no-compress`'
GW_USER_ST=$([[ $GW_USER_OK == 1 ]] || echo "$GW_USER_WHY")
GW_NC_ST=$([[ $GW_NC_OK == 1 ]] || echo "$GW_NC_WHY")
ROWS=(
	"origin|origin (direct)|HTTP/1.1|wrk|http://127.0.0.1:$P_ORIGIN_DIRECT/|"
	"nginx|nginx 1 worker|HTTP/1.1 → HTTP/1.1|wrk|http://127.0.0.1:$P_NGINX/|"
	"gw|gateway|HTTP/1.1 → HTTP/1.1|wrk|http://127.0.0.1:$P_GW/|$([[ $GW_OK == 1 ]] || echo "$GW_WHY")"
	"floor|floor (net/http's least)|HTTP/1.1 → HTTP/1.1|wrk|http://127.0.0.1:$P_FLOOR/|"
	"gw_h2up|gateway|HTTP/1.1 → h2c|wrk|http://127.0.0.1:$P_GW_H2UP/|$([[ $GW_H2UP_OK == 1 ]] || echo "$GW_H2UP_WHY")"
	"floor_h2up|floor (net/http's least)|HTTP/1.1 → h2c|wrk|http://127.0.0.1:$P_FLOOR_H2UP/|"
	"plain|plainproxy (httputil, default transport)|HTTP/1.1 → HTTP/1.1|wrk|http://127.0.0.1:$P_PLAIN/|"
	"origin|origin (direct)|h2c|h2load|http://127.0.0.1:$P_ORIGIN_DIRECT/|"
	"nginx_h2|nginx 1 worker|h2c → HTTP/1.1|h2load|http://127.0.0.1:$P_NGINX_H2/|"
	"gw|gateway|h2c → HTTP/1.1|h2load|http://127.0.0.1:$P_GW/|$([[ $GW_OK == 1 ]] || echo "$GW_WHY")"
	"floor|floor (net/http's least)|h2c → HTTP/1.1|h2load|http://127.0.0.1:$P_FLOOR/|"
	"gw_h2up|gateway|h2c → h2c|h2load|http://127.0.0.1:$P_GW_H2UP/|$([[ $GW_H2UP_OK == 1 ]] || echo "$GW_H2UP_WHY")"
	"floor_h2up|floor (net/http's least)|h2c → h2c|h2load|http://127.0.0.1:$P_FLOOR_H2UP/|"
	"gw_user|$USER_LABEL|HTTP/1.1 → HTTP/1.1|wrk|http://127.0.0.1:$P_GW_USER/|$GW_USER_ST"
	"gw_nc|$NC_LABEL|HTTP/1.1 → HTTP/1.1|wrk|http://127.0.0.1:$P_GW_NC/|$GW_NC_ST"
	"gw_user|$USER_LABEL, a new URL each request (cache miss)|HTTP/1.1 → HTTP/1.1|wrkd|http://127.0.0.1:$P_GW_USER|$GW_USER_ST"
	"gw_nc|$NC_LABEL, a new URL each request|HTTP/1.1 → HTTP/1.1|wrkd|http://127.0.0.1:$P_GW_NC|$GW_NC_ST"
	"gw_user|$USER_LABEL|h2c → HTTP/1.1|h2load|http://127.0.0.1:$P_GW_USER/|$GW_USER_ST"
	"gw_nc|$NC_LABEL|h2c → HTTP/1.1|h2load|http://127.0.0.1:$P_GW_NC/|$GW_NC_ST"
)

# Each wrkd load starts distinct.lua at LOAD_SEQ * 1e8 (see warm_row).
LOAD_SEQ=0

wait_quiet

# warm_row runs the current row's load generator for WARMUP, unmeasured.
warm_row() {
	local args=()
	# The measured run that follows starts at LOAD_SEQ * 1e8; the warmup
	# takes URLs half way to the next, which no run reaches.
	[[ $tool != wrkd ]] || args=($((LOAD_SEQ * 100000000 + 50000000)))
	timeout "$LOAD_TIMEOUT" "${PIN_LOAD[@]}" "${load[@]}" "$dflag" "$WARMUP" "$url" "${args[@]}" >/dev/null 2>&1 || true
	rm -f "$out.txt.reqlog"
}

mkdir -p "$TMP/out"
# Rounds go over every target before repeating, so slow drift of the
# machine (thermal, background work) spreads over all targets alike.
for run in $(seq 1 "$RUNS"); do
	for i in "${!ROWS[@]}"; do
		IFS='|' read -r id label proto tool url status <<<"${ROWS[$i]}"
		[[ -z "$status" ]] || continue
		out="$TMP/out/row$i.run$run"
		log "run $run/$RUNS: $label ($proto, $tool) $url"
		pids=$(server_pids "$id")
		args=()
		if [[ $tool == wrk ]]; then
			load=(wrk -t1 -c"$CONNS" --latency)
			dflag=-d
		elif [[ $tool == wrkd ]]; then
			load=(wrk -t1 -c"$CONNS" --latency -s "$BENCH_DIR/distinct.lua")
			dflag=-d
			LOAD_SEQ=$((LOAD_SEQ + 1))
			args=($((LOAD_SEQ * 100000000)))
		else
			load=(h2load -c "$CONNS" -m "$STREAMS" --log-file="$out.txt.reqlog")
			dflag=-D
		fi
		# Warmup first, then CPU is sampled around the measured run only.
		measure "$out.txt" "$pids" warm_row timeout "$LOAD_TIMEOUT" "${PIN_LOAD[@]}" "${load[@]}" "$dflag" "$DURATION" "$url" "${args[@]}"
		((M_RC == 0)) || log "$tool exited non-zero for $label"
		other=$M_OTHER
		if [[ $tool != h2load ]]; then
			res=$(parse_wrk "$out.txt") || res=""
		else
			res=$(parse_h2load "$out.txt") || res=""
		fi
		if [[ -z "$res" ]]; then
			log "could not parse $tool output for $label; output was:"
			tail -n 20 "$out.txt" >&2 || true
			continue
		fi
		read -r rps reqs p50 p99 errs <<<"$res"
		cpu=$(cpu_us_per_req "$M_TICKS" "$reqs")
		echo "$rps $p50 $p99 $cpu $errs $other" >>"$TMP/out/row$i.samples"
		log "  -> $rps req/s, p50 ${p50}µs, p99 ${p99}µs, CPU ${cpu}µs/req, errors $errs, other load ${other}%"
	done
done

# ---------------------------------------------------------------- report
# Runs that other processes disturbed (over OTHER_MAX even after the
# retries) are left out of the medians when the row has undisturbed runs.
declare -A MED_RPS MED_CPU
for i in "${!ROWS[@]}"; do
	all="$TMP/out/row$i.samples"
	f="$TMP/out/row$i.used"
	[[ -s "$all" ]] || continue
	used_samples "$all" "$f" 6
	MED_RPS[$i]=$(median 1 "$f")
	MED_CPU[$i]=$(median 4 "$f")
done
# Ratios compare with nginx on the same client protocol: the row with id
# nginx (wrk) or nginx_h2 (h2load).
ref_row() {
	local want=nginx i rid rest
	[[ "$2" != h2load ]] || want=nginx_h2
	for i in "${!ROWS[@]}"; do
		IFS='|' read -r rid rest <<<"${ROWS[$i]}"
		[[ $rid != "$want" ]] || { echo "$i"; return; }
	done
}

# row_of ID TOOL: the index of the row with that id measured by that tool.
row_of() {
	local i rid label proto tool rest
	for i in "${!ROWS[@]}"; do
		IFS='|' read -r rid label proto tool rest <<<"${ROWS[$i]}"
		[[ $rid != "$1" || $tool != "$2" ]] || { echo "$i"; return; }
	done
}

# h2c_table: each target's h2c row against its HTTP/1.1 row with the
# same upstream, the issue's "h2c at least as well as HTTP/1.1".
h2c_table() {
	local pair h1id h2id a b label proto rest
	echo "| target | upstream | h2c req/s ÷ HTTP/1.1 req/s | h2c CPU/req ÷ HTTP/1.1 CPU/req |"
	echo "| --- | --- | ---: | ---: |"
	for pair in origin:origin nginx:nginx_h2 floor:floor gw:gw floor_h2up:floor_h2up gw_h2up:gw_h2up; do
		h1id=${pair%%:*}
		h2id=${pair##*:}
		a=$(row_of "$h1id" wrk)
		b=$(row_of "$h2id" h2load)
		[[ -n $a && -n $b && -n ${MED_RPS[$a]:-} && -n ${MED_RPS[$b]:-} ]] || continue
		IFS='|' read -r _ label proto rest <<<"${ROWS[$b]}"
		proto=${proto#*→ }
		[[ $proto != h2c || $h1id != origin ]] || proto="(none)"
		awk -v l="$label" -v p="$proto" -v r1="${MED_RPS[$a]}" -v r2="${MED_RPS[$b]}" -v c1="${MED_CPU[$a]}" -v c2="${MED_CPU[$b]}" 'BEGIN {
			printf "| %s | %s | %.2f | %.2f |\n", l, p, r2 / r1, c2 / c1 }'
	done
}

# cpu_ratio A_ID A_TOOL B_ID B_TOOL prints the median CPU/req of row A over
# row B's, then the least and most of the per-round ratios (round r of A
# against round r of B, measured minutes apart at most), or nothing when
# either row is missing.
cpu_ratio() {
	local a b
	a=$(row_of "$1" "$2")
	b=$(row_of "$3" "$4")
	[[ -n $a && -n $b && -n ${MED_CPU[$a]:-} && -n ${MED_CPU[$b]:-} ]] || return 0
	paste -d' ' <(awk '{print $4}' "$TMP/out/row$a.samples") <(awk '{print $4}' "$TMP/out/row$b.samples") |
		awk -v ma="${MED_CPU[$a]}" -v mb="${MED_CPU[$b]}" '
			NF == 2 && $2 > 0 { r = $1 / $2; if (n == 0 || r < lo) lo = r; if (n == 0 || r > hi) hi = r; n++ }
			END { printf "%.2f|%.2f–%.2f", ma / mb, lo, hi }'
}

# targets_table: the gateway's CPU per request against the floor's (and a
# miss against the same route without the cache), the ratios the
# performance targets are stated in.
targets_table() {
	local line what aid atool bid btool target r
	echo "| CPU per request | ratio (median) | per-round spread | target |"
	echo "| --- | ---: | ---: | ---: |"
	while IFS='|' read -r what aid atool bid btool target; do
		r=$(cpu_ratio "$aid" "$atool" "$bid" "$btool")
		[[ -n $r ]] || continue
		echo "| $what | ${r%%|*} | ${r#*|} | $target |"
	done <<EOF
$USER_LABEL ÷ floor, HTTP/1.1 → HTTP/1.1|gw_user|wrk|floor|wrk|≤ 1.10
$NC_LABEL ÷ floor, HTTP/1.1 → HTTP/1.1|gw_nc|wrk|floor|wrk|
gateway (bench config) ÷ floor, HTTP/1.1 → HTTP/1.1|gw|wrk|floor|wrk|
a miss (new URL each request): $USER_LABEL ÷ $NC_LABEL|gw_user|wrkd|gw_nc|wrkd|≤ 1.15
gateway (bench config) ÷ floor, h2c → HTTP/1.1|gw|h2load|floor|h2load|≤ 1.15
$USER_LABEL ÷ floor, h2c → HTTP/1.1|gw_user|h2load|floor|h2load|≤ 1.15
gateway (bench config) ÷ floor, h2c → h2c|gw_h2up|h2load|floor_h2up|h2load|≤ 1.15
EOF
}

GO_VERSION=$(go version)
NGINX_VERSION=$("$NGINX_BIN" -v 2>&1 | head -n1)
WRK_VERSION=$(wrk -v 2>&1 | head -n1 || true)
H2LOAD_VERSION=$(h2load --version 2>&1 | head -n1)
MISSING=0

mkdir -p "$BENCH_DIR/results"
# The default size owns the canonical section; other sizes get their own
# file so a SIZE=... experiment does not replace it.
if [[ "$SIZE" == 1024 ]]; then
	SECTION="$BENCH_DIR/results/10-passthrough.md"
	SIZE_LABEL="1 KiB"
else
	SECTION="$BENCH_DIR/results/10-passthrough-${SIZE}B.md"
	SIZE_LABEL="$SIZE B"
fi
{
	echo "## Pass-through (no-store, $SIZE_LABEL, $CONNS connections)"
	echo
	echo "Measured $MEASURE_START to $(date -u "+%H:%M:%S UTC") by \`bench/run.sh\`:"
	echo "body $SIZE bytes with \`Cache-Control: no-store\`, $CONNS connections,"
	echo "$DURATION per run after a $WARMUP warmup, $RUNS run(s) per row."
	echo "h2load uses $STREAMS concurrent streams per connection."
	echo "Pinning: $PIN_NOTE."
	echo
	echo "- $NGINX_VERSION"
	echo "- $WRK_VERSION"
	echo "- $H2LOAD_VERSION"
	echo "- $GO_VERSION"
	echo "- kernel $(uname -sr), nproc $NPROC"
	echo "- gateway: default config but upstream \`max_idle_per_target: 256\` and"
	echo "  \`access_log: {enabled: false}\`, as nginx's \`access_log off\` here"
	echo "  (\`bench/observability.sh\` measures the access log's cost)"
	echo "- load average (1/5/15 min) before measuring: $LOADAVG_START"
	echo
	echo "| target | protocol (client → upstream) | req/s | p50 ms | p99 ms | CPU µs/req | req/s ÷ nginx | CPU/req ÷ nginx | errors | other load % | runs |"
	echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	for i in "${!ROWS[@]}"; do
		IFS='|' read -r id label proto tool url status <<<"${ROWS[$i]}"
		f="$TMP/out/row$i.used"
		if [[ ! -s "$f" ]]; then
			MISSING=1
			echo "| $label | $proto | ${status:-not measured: load run failed} | | | | | | | | |"
			continue
		fi
		ref=$(ref_row "$id" "$tool")
		p50=$(median 2 "$f")
		p99=$(median 3 "$f")
		errs=$(median 5 "$f")
		other=$(max_col 6 "$f")
		used="$(wc -l <"$f")/$(wc -l <"$TMP/out/row$i.samples")"
		awk -v l="$label" -v p="$proto" -v r="${MED_RPS[$i]}" -v a="$p50" -v b="$p99" -v c="${MED_CPU[$i]}" \
			-v rr="${MED_RPS[$ref]:-}" -v rc="${MED_CPU[$ref]:-}" -v e="$errs" -v o="$other" -v u="$used" 'BEGIN {
			qr = (rr + 0 > 0) ? sprintf("%.2f", r / rr) : "–"
			qc = (rc + 0 > 0) ? sprintf("%.2f", c / rc) : "–"
			printf "| %s | %s | %.0f | %.3f | %.3f | %.1f | %s | %s | %d | %d | %s |\n", l, p, r, a / 1000, b / 1000, c, qr, qc, e, o, u }'
	done
	echo
	echo "req/s, p50, p99 and CPU are each the median over the runs counted in"
	echo "\"runs\" (used/measured: runs that other processes disturbed are left out"
	echo "when the row has undisturbed ones). CPU µs/req is"
	echo "user+system time of the server under test (nginx: master and worker) over"
	echo "the measured run, divided by requests completed; it excludes the origin."
	echo "Ratios compare with nginx on the same client protocol (above 1 is more"
	echo "req/s, or more CPU per request, than nginx). errors counts non-2xx"
	echo "responses and socket/stream errors (median over the runs)."
	note_other_load
	echo
	echo "floor (\`bench/floor\`) is the least a proxy built on net/http can spend:"
	echo "net/http's server on the client side, as the gateway's, and an upstream"
	echo "leg that forwards no header and checks nothing (prepared request bytes on"
	echo "a pooled connection and http.ReadResponse; or net/http's Transport for"
	echo "h2c). Where the gateway's row is close to the floor's, the rest of the"
	echo "distance to nginx is net/http's own cost, not the gateway's."
	echo
	echo "The gateway's CPU per request against the floor's, and a miss through"
	echo "the cache against the same requests without it:"
	echo
	targets_table
	echo
	echo "$USER_LABEL is \`gateway proxy --to ORIGIN --access-log off\` with every"
	echo "other flag at its default: cache and compression on (the origin's"
	echo "\`/\` is no-store, so the cache passes it on), the sidecar memory"
	echo "profile, the upstream protocol auto; \"a new URL each request\" asks"
	echo "for \`/nostore?i=N\` with N never repeating (wrk with a Lua script), so"
	echo "every request is a miss that the cache looks up, coalesces and"
	echo "declines to store."
	echo
	echo "Each target from an h2c client ($STREAMS streams on each of $CONNS connections)"
	echo "against the same target from HTTP/1.1 clients ($CONNS connections), same upstream:"
	echo
	h2c_table
} >"$SECTION"

publish_section "$SECTION" "some targets were not measured; see the table"
