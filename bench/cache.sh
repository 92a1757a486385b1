#!/usr/bin/env bash
# Cache benchmark: the gateway's cache next to nginx proxy_cache, Varnish
# and the origin alone, all on loopback:
#   1. cache hits, 1 KiB and 64 KiB bodies (wrk, 50 connections);
#   2. stampede: 200 clients at once for one cold URL whose origin takes
#      200 ms; origin requests and client latencies;
#   3. one hot no-store URL against distinct no-store URLs (wrk, 50
#      connections): does the cache serialize uncacheable requests?
#
# Usage: bash bench/cache.sh
# Knobs (environment):
#   DURATION=10s   length of each measured wrk run
#   RUNS=3         measured wrk runs per row; the median is reported
#   STAMPEDE_ROUNDS=5  stampede rounds per target (QUICK: 3), each on a new URL
#   QUICK=1        smoke test: DURATION=2s RUNS=1
#   WARMUP=2s      unmeasured wrk run before every measured one
#   PORT_BASE=29000  first of the loopback ports used (see below)
#   LOAD_CPU=0 PROXY_CPU=1  cores for load generator+origin and server under test
#   KEEP_TMP=1     keep the temp dirs (configs, logs, raw output)
#   OTHER_MAX=15 RETRIES=2 QUIET_WAIT=300  interference handling, as in run.sh
#
# Writes bench/results/20-cache.md and reassembles bench/RESULTS.md. Exits 2
# when some target could not be measured (its rows say why; e.g. a gateway
# without the cache rejects the config), 1 on a harness error.

# PID_NAME variables are set by start() (lib.sh) through eval.
# shellcheck disable=SC2153
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
bench_knobs
CONNS=50                 # fixed: the headings promise 50 connections
SIZES=(1024 65536)       # cache-hit body sizes
STAMPEDE_CLIENTS=200
STAMPEDE_MS=200
if [[ "${QUICK:-0}" == "1" ]]; then
	STAMPEDE_ROUNDS="${STAMPEDE_ROUNDS:-3}"
fi
STAMPEDE_ROUNDS="${STAMPEDE_ROUNDS:-5}"
[[ "$STAMPEDE_ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "STAMPEDE_ROUNDS=$STAMPEDE_ROUNDS: must be a positive integer"
PORT_BASE="${PORT_BASE:-29000}"
# wrk gives up on a request after this long; the hot no-store rows can be
# slow behind a cache lock, and a late answer is latency, not an error.
WRK_TIMEOUT=10s

# Port plan, all on 127.0.0.1.
P_ORIGIN=$PORT_BASE                 # origin that the proxies forward to (load core)
P_NGINX=$((PORT_BASE + 1))          # nginx proxy_cache
P_GW=$((PORT_BASE + 2))             # gateway
P_VARNISH=$((PORT_BASE + 3))        # varnishd
P_ORIGIN_DIRECT=$((PORT_BASE + 4))  # origin measured directly (proxy core)
P_GW_ADMIN=$((PORT_BASE + 1092))

TARGETS=(origin nginx varnish gw)
declare -A LABEL=(
	[origin]="origin (direct)"
	[nginx]="nginx 1 worker, proxy_cache"
	[varnish]="Varnish"
	[gw]="gateway"
)
declare -A BASE=(
	[origin]="http://127.0.0.1:$P_ORIGIN_DIRECT"
	[nginx]="http://127.0.0.1:$P_NGINX"
	[varnish]="http://127.0.0.1:$P_VARNISH"
	[gw]="http://127.0.0.1:$P_GW"
)
# WHY[target] is empty while the target can be measured, else the reason.
declare -A WHY=([origin]="" [nginx]="" [varnish]="" [gw]="")

# ---------------------------------------------------------------- tools
bench_tools
bench_pinning
bench_tmp
VARNISH_VERSION=$("$VARNISHD_BIN" -V 2>&1 | head -n1)
LABEL[varnish]="Varnish $(sed -n 's/.*varnish-\([0-9.]*\).*/\1/p' <<<"$VARNISH_VERSION"), malloc"
# The nginx cache and Varnish's working directory (its shared-memory log)
# live in memory, as they would on a tuned server, so no disk I/O enters
# the numbers.
if [[ -d /dev/shm && -w /dev/shm ]]; then
	SHM="$(mktemp -d /dev/shm/gwbench-cache.XXXXXX)"
	chmod 755 "$SHM"
	EXTRA_RM+=("$SHM")
else
	SHM="$TMP"
fi

for p in $P_ORIGIN $P_NGINX $P_GW $P_VARNISH $P_ORIGIN_DIRECT $P_GW_ADMIN; do
	port_free "$p" || die "port 127.0.0.1:$p is in use; set PORT_BASE to another range"
done

# ---------------------------------------------------------------- build
log "building origin and stampede"
(cd "$REPO_DIR" && go build -o "$TMP/origin" ./bench/origin && go build -o "$TMP/stampede" ./bench/stampede) ||
	die "building bench/origin or bench/stampede failed"

# The gateway's config, exactly the cache setup the section describes.
cat >"$TMP/gateway.yaml" <<EOF
shutdown_grace: 5s
log:
  level: warn
# As nginx here (access_log off); bench/observability.sh measures its cost.
access_log:
  enabled: false
cache:
  max_size: 256MiB
  max_object_size: 8MiB
listeners:
  - address: "127.0.0.1:$P_GW"
admin:
  address: "127.0.0.1:$P_GW_ADMIN"
upstreams:
  origin:
    targets: ["http://127.0.0.1:$P_ORIGIN"]
    protocol: http1
    max_idle_per_target: 256
routes:
  - path: /
    upstream: origin
    cache:
      enabled: true
EOF

# Without the cache the gateway refuses the unknown "cache" keys.
WHY[gw]=$(build_gateway "$TMP/gateway.yaml" "cache config")
[[ -z "${WHY[gw]}" ]] || log "${WHY[gw]}"

# ---------------------------------------------------------------- servers
start ORIGIN "$TMP/origin.log" "${PIN_LOAD[@]}" "$TMP/origin" -addr "127.0.0.1:$P_ORIGIN"
wait_http origin "$PID_ORIGIN" "$TMP/origin.log" "http://127.0.0.1:$P_ORIGIN/" || die "origin did not start"
# The origin measured directly runs on the proxy core, so its row is the
# same setup as a proxy's: one server core, one load core.
start ORIGIN_DIRECT "$TMP/origin-direct.log" "${PIN_PROXY[@]}" "$TMP/origin" -addr "127.0.0.1:$P_ORIGIN_DIRECT"
wait_http origin-direct "$PID_ORIGIN_DIRECT" "$TMP/origin-direct.log" "http://127.0.0.1:$P_ORIGIN_DIRECT/" || die "origin (direct) did not start"

mkdir -p "$TMP/nginx/logs"
{
	nginx_conf_head
	cat <<EOF
    # sendfile and tcp_nopush stay off (nginx's defaults). Debian's
    # nginx.conf turns both on; here sendfile from the tmpfs cache was
    # slower for both sizes, and tcp_nopush held the end of every 64 KiB
    # hit for the 40 ms delayed ACK (1.2k req/s).
    # No proxy_cache_valid: only what Cache-Control allows is stored, for
    # as long as it allows. use_temp_path=off writes responses straight
    # into the cache directory (in memory, see SHM).
    proxy_cache_path $SHM/nginx-cache levels=1:2 keys_zone=bench:10m max_size=256m use_temp_path=off;
    server {
        listen 127.0.0.1:$P_NGINX;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache bench;
            # One request fills a missing entry, the others wait for it
            # (nginx re-checks every 500 ms, up to proxy_cache_lock_timeout 5s).
            proxy_cache_lock on;
            add_header X-Cache-Status \$upstream_cache_status always;
        }
    }
}
EOF
} >"$TMP/nginx/nginx.conf"
start_nginx "http://127.0.0.1:$P_NGINX/"

# Varnish: its own instance in the foreground (-F), working directory (its
# shared-memory log) under $SHM (-n), no management port (-T none), the builtin VCL with one
# backend (-b), 256 MiB of malloc storage. As root, varnishd's default
# "unix" jail drops to the varnish (manager) and vcache (worker) users that
# the Debian package creates; said explicitly here. Not as root, or without
# those users, "-j none" runs every process with the caller's privileges.
# taskset pins the manager; the worker process and its threads inherit the
# affinity (checked below).
if [[ $(id -u) -eq 0 ]] && id varnish >/dev/null 2>&1 && id vcache >/dev/null 2>&1; then
	VARNISH_JAIL="unix,user=varnish,workuser=vcache"
else
	VARNISH_JAIL="none"
fi
# shellcheck disable=SC2054  # the commas belong to the -s argument
VARNISH_ARGS=(-F -j "$VARNISH_JAIL" -n "$SHM/varnish" -a "127.0.0.1:$P_VARNISH" -b "127.0.0.1:$P_ORIGIN"
	-T none -s malloc,256m)
VARNISH_CMD="varnishd ${VARNISH_ARGS[*]}"
VARNISH_CMD="${VARNISH_CMD//$SHM/\$SHM}"
start VARNISH "$TMP/varnish.log" "${PIN_PROXY[@]}" "$VARNISHD_BIN" "${VARNISH_ARGS[@]}"
PARENTS+=("$PID_VARNISH")
if ! wait_http varnish "$PID_VARNISH" "$TMP/varnish.log" "http://127.0.0.1:$P_VARNISH/"; then
	WHY[varnish]="not measured: varnishd did not start ($(one_line "$TMP/varnish.log"))"
	log "${WHY[varnish]}"
fi

if [[ -z "${WHY[gw]}" ]] && ! start_gw "$TMP/gateway.yaml" "$P_GW_ADMIN" "$P_GW"; then
	WHY[gw]="not measured: gateway did not start ($(one_line "$TMP/gateway.log"))"
	log "${WHY[gw]}"
fi

# server_pids TARGET lists the processes whose CPU is charged to TARGET.
# shellcheck disable=SC2046
server_pids() {
	case "$1" in
	origin) echo "$PID_ORIGIN_DIRECT" ;;
	nginx) echo "$PID_NGINX" $(child_pids "$PID_NGINX") ;;
	varnish) echo "$PID_VARNISH" $(child_pids "$PID_VARNISH") ;;
	gw) echo "$PID_GW" ;;
	esac
}

for t in "${TARGETS[@]}"; do
	[[ -z "${WHY[$t]}" ]] || continue
	# shellcheck disable=SC2046
	check_pinned "${LABEL[$t]}" "$PROXY_CPU" $(server_pids "$t")
done

# ---------------------------------------------------------------- hit check
# check_hit TARGET URL SIZE warms the cache with one request for URL, then
# checks that the next response is a hit of SIZE bytes. On failure it
# prints why.
check_hit() {
	local t=$1 url=$2 size=$3 hdr="$TMP/hit-$1-$3.hdr" res
	if ! curl -fsS -o /dev/null --max-time 5 "$url" 2>"$hdr.err"; then
		echo "warm-up request failed: $(one_line "$hdr.err")"
		return 1
	fi
	res=$(curl -sS -D "$hdr" -o /dev/null --max-time 5 -w '%{http_code} %{size_download}' "$url" 2>"$hdr.err") || {
		echo "request after warm-up failed: $(one_line "$hdr.err")"
		return 1
	}
	tr -d '\r' <"$hdr" >"$hdr.txt"
	if [[ "$res" != "200 $size" ]]; then
		echo "request after warm-up answered status/bytes $res, want 200 $size"
		return 1
	fi
	local ok=1 seen=""
	case "$t" in
	nginx)
		seen=$(grep -i '^x-cache-status:' "$hdr.txt" || true)
		grep -qiE '^x-cache-status:[[:space:]]*HIT[[:space:]]*$' "$hdr.txt" || ok=0
		;;
	varnish)
		# On a hit X-Varnish holds this request's id and the id of the
		# request that stored the object.
		seen=$(grep -iE '^(x-varnish|age):' "$hdr.txt" | tr '\n' ' ' || true)
		grep -qiE '^x-varnish:[[:space:]]*[0-9]+[[:space:]]+[0-9]+[[:space:]]*$' "$hdr.txt" || ok=0
		;;
	gw)
		seen=$(grep -i '^cache-status:' "$hdr.txt" || true)
		grep -qiE '^cache-status:.*;[[:space:]]*hit([[:space:]]*[;,]|[[:space:]]*$)' "$hdr.txt" || ok=0
		;;
	esac
	if ((!ok)); then
		echo "the response after warm-up was not a hit (${seen:-no cache header})"
		return 1
	fi
}

# ---------------------------------------------------------------- rows
# Load rows: id|section|target|what|path|mode|status; mode is plain (wrk
# alone), hot or distinct (wrk with nostore.lua).
ROWS=()
for size in "${SIZES[@]}"; do
	for t in "${TARGETS[@]}"; do
		status="${WHY[$t]}"
		if [[ -z "$status" ]]; then
			why=$(check_hit "$t" "${BASE[$t]}/cacheable/$size" "$size") || status="not measured: $why"
			[[ -z "$status" ]] || log "${LABEL[$t]}, $size B: $status"
		fi
		ROWS+=("hit$size-$t|hit|$t|$size|/cacheable/$size|plain|${status//|//}")
	done
done
for t in "${TARGETS[@]}"; do
	ROWS+=("hot-$t|nostore|$t|one URL (hot)|/nostore|hot|${WHY[$t]//|//}")
	ROWS+=("distinct-$t|nostore|$t|distinct URLs|/nostore|distinct|${WHY[$t]//|//}")
done

# Both no-store patterns go through the same Lua script, so the load
# generator does the same work for each; only the URL differs.
cat >"$TMP/nostore.lua" <<'EOF'
-- args: "hot" (every request for /nostore) or "distinct OFFSET"
-- (/nostore?i=N with N counting up from OFFSET, never repeating).
local mode, i = "hot", 0
function init(args)
  mode = args[1] or "hot"
  i = tonumber(args[2]) or 0
end
function request()
  if mode == "distinct" then
    i = i + 1
    return wrk.format("GET", "/nostore?i=" .. i)
  end
  return wrk.format("GET", "/nostore")
end
EOF

# run_wrk DURATION runs wrk on the current row (CUR_URL, CUR_MODE). Each
# distinct run starts at a new offset, so no run repeats another's URLs.
WRK_SEQ=0
run_wrk() {
	local cmd=(wrk -t1 -c"$CONNS" --latency --timeout "$WRK_TIMEOUT" -d "$1")
	case "$CUR_MODE" in
	plain) cmd+=("$CUR_URL") ;;
	hot) cmd+=(-s "$TMP/nostore.lua" "$CUR_URL" hot) ;;
	distinct)
		WRK_SEQ=$((WRK_SEQ + 1))
		cmd+=(-s "$TMP/nostore.lua" "$CUR_URL" distinct $((WRK_SEQ * 100000000)))
		;;
	esac
	timeout "$LOAD_TIMEOUT" "${PIN_LOAD[@]}" "${cmd[@]}"
}
warm_wrk() { run_wrk "$WARMUP" >/dev/null 2>&1 || true; }

origin_total() { curl -fsS --max-time 2 "http://127.0.0.1:$P_ORIGIN/_count" 2>/dev/null || echo x; }

# measured_wrk is the measured run; it also prints how many requests the
# origin behind the proxies got meanwhile (0 for a cache serving only hits).
measured_wrk() {
	local c0 c1 rc=0
	c0=$(origin_total)
	run_wrk "$DURATION" || rc=$?
	c1=$(origin_total)
	if [[ "$c0" =~ ^[0-9]+$ && "$c1" =~ ^[0-9]+$ ]]; then
		echo "origin_requests: $((c1 - c0))"
	fi
	return "$rc"
}

# stampede_round fires one burst at CUR_T on a URL no round used before and
# prints the stampede line and how many requests the origin got for it.
STAMPEDE_SEQ=0
stampede_round() {
	STAMPEDE_SEQ=$((STAMPEDE_SEQ + 1))
	local base=${BASE[$CUR_T]} key="$CUR_T-$STAMPEDE_SEQ-$$" rc=0 origin=$P_ORIGIN
	local uri="/slow?ms=$STAMPEDE_MS&k=$key"
	[[ "$CUR_T" != origin ]] || origin=$P_ORIGIN_DIRECT
	# Warm-up: one no-store request per client on distinct URLs, so that
	# every client holds an open connection when the burst starts.
	timeout 90 "${PIN_LOAD[@]}" "$TMP/stampede" -n "$STAMPEDE_CLIENTS" -timeout 30s -url "$base$uri" \
		-warm "$base/slow?ms=50&nostore=1&w=$key-%d" || rc=$?
	echo "origin_requests=$(curl -fsS --max-time 2 --get --data-urlencode "uri=$uri" "http://127.0.0.1:$origin/_count" || echo x)"
	return "$rc"
}

# ---------------------------------------------------------------- measuring
wait_quiet

mkdir -p "$TMP/out"
# Rounds go over every row before repeating, so slow drift of the machine
# (thermal, background work) spreads over all rows alike.
for run in $(seq 1 "$RUNS"); do
	for i in "${!ROWS[@]}"; do
		IFS='|' read -r id section t what path mode status <<<"${ROWS[$i]}"
		[[ -z "$status" ]] || continue
		CUR_URL="${BASE[$t]}$path"
		CUR_MODE=$mode
		out="$TMP/out/$id.run$run.txt"
		log "run $run/$RUNS: ${LABEL[$t]}, $what ($mode) $CUR_URL"
		measure "$out" "$(server_pids "$t")" warm_wrk measured_wrk
		((M_RC == 0)) || log "wrk exited non-zero for ${LABEL[$t]}, $what"
		if ! res=$(parse_wrk "$out"); then
			log "could not parse wrk output for ${LABEL[$t]}, $what; output was:"
			tail -n 20 "$out" >&2 || true
			continue
		fi
		read -r rps reqs p50 p99 errs <<<"$res"
		cpu=$(cpu_us_per_req "$M_TICKS" "$reqs")
		oreq=$(awk '/^origin_requests:/ {print $2}' "$out")
		[[ "$t" != origin ]] || oreq=-1 # the origin itself: not applicable
		echo "$rps $p50 $p99 $cpu $errs $M_OTHER ${oreq:--1}" >>"$TMP/out/$id.samples"
		log "  -> $rps req/s, p50 ${p50}µs, p99 ${p99}µs, CPU ${cpu}µs/req, errors $errs, origin requests ${oreq:-?}, other load ${M_OTHER}%"
	done
done

for round in $(seq 1 "$STAMPEDE_ROUNDS"); do
	for t in "${TARGETS[@]}"; do
		[[ -z "${WHY[$t]}" ]] || continue
		CUR_T=$t
		out="$TMP/out/stampede-$t.round$round.txt"
		log "stampede round $round/$STAMPEDE_ROUNDS: ${LABEL[$t]}, $STAMPEDE_CLIENTS clients, origin ${STAMPEDE_MS} ms"
		measure "$out" "" : stampede_round
		line=$(grep -m1 '^n=' "$out" || true)
		oreq=$(awk -F= '/^origin_requests=/ {print $2}' "$out")
		p50=$(sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p' <<<"$line")
		max=$(sed -n 's/.*max_ms=\([0-9.]*\).*/\1/p' <<<"$line")
		errs=$(sed -n 's/.* errors=\([0-9]*\).*/\1/p' <<<"$line")
		if [[ -z "$p50" || -z "$max" || ! "$oreq" =~ ^[0-9]+$ ]]; then
			log "stampede round failed for ${LABEL[$t]}; output was:"
			tail -n 20 "$out" >&2 || true
			continue
		fi
		echo "$p50 $max $oreq $errs $M_OTHER" >>"$TMP/out/stampede-$t.samples"
		log "  -> origin requests $oreq, p50 ${p50} ms, max ${max} ms, errors $errs, other load ${M_OTHER}%"
	done
done

GW_STATS=""
if [[ -z "${WHY[gw]}" ]]; then
	GW_STATS=$(curl -fsS --max-time 2 "http://127.0.0.1:$P_GW_ADMIN/cache/stats" 2>/dev/null | tr -d '\n' || true)
	[[ -z "$GW_STATS" ]] || log "gateway /cache/stats: $GW_STATS"
fi

# ---------------------------------------------------------------- report
MISSING=0
declare -A MED_RPS MED_CPU
for i in "${!ROWS[@]}"; do
	IFS='|' read -r id _ <<<"${ROWS[$i]}"
	[[ -s "$TMP/out/$id.samples" ]] || continue
	used_samples "$TMP/out/$id.samples" "$TMP/out/$id.used" 6
	MED_RPS[$id]=$(median 1 "$TMP/out/$id.used")
	MED_CPU[$id]=$(median 4 "$TMP/out/$id.used")
done

# load_row ID LABEL WHAT REF_ID EXTRA prints one table row of a wrk row; the
# ratios compare with row REF_ID, EXTRA picks the last-but-three column:
# "origin" (origin requests) or "hot" (req/s hot ÷ distinct).
load_row() {
	local id=$1 label=$2 what=$3 ref=$4 extra=$5 status=$6 f="$TMP/out/$1.used"
	if [[ ! -s "$f" ]]; then
		MISSING=1
		if [[ $extra == origin ]]; then
			echo "| $label | $what | ${status:-not measured: load run failed} | | | | | | | | | |"
		else
			echo "| $label | $what | ${status:-not measured: load run failed} | | | | | | | |"
		fi
		return
	fi
	local p50 p99 errs other used oreq col
	p50=$(median 2 "$f")
	p99=$(median 3 "$f")
	errs=$(median 5 "$f")
	other=$(max_col 6 "$f")
	used="$(wc -l <"$f")/$(wc -l <"$TMP/out/$id.samples")"
	if [[ $extra == origin ]]; then
		oreq=$(median 7 "$f")
		col=$(awk -v o="$oreq" 'BEGIN { print (o < 0) ? "–" : sprintf("%d", o) }')
		awk -v l="$label" -v w="$what" -v r="${MED_RPS[$id]}" -v a="$p50" -v b="$p99" -v c="${MED_CPU[$id]}" \
			-v rr="${MED_RPS[$ref]:-}" -v rc="${MED_CPU[$ref]:-}" -v x="$col" -v e="$errs" -v o="$other" -v u="$used" 'BEGIN {
			qr = (rr + 0 > 0) ? sprintf("%.2f", r / rr) : "–"
			qc = (rc + 0 > 0) ? sprintf("%.2f", c / rc) : "–"
			printf "| %s | %s | %.0f | %.3f | %.3f | %.1f | %s | %s | %s | %d | %d | %s |\n", l, w, r, a / 1000, b / 1000, c, qr, qc, x, e, o, u }'
	else
		awk -v l="$label" -v w="$what" -v r="${MED_RPS[$id]}" -v a="$p50" -v b="$p99" -v c="${MED_CPU[$id]}" \
			-v rr="${MED_RPS[$ref]:-}" -v h="$extra" -v e="$errs" -v o="$other" -v u="$used" 'BEGIN {
			q = (h == "hot" && rr + 0 > 0) ? sprintf("%.2f", r / rr) : ""
			printf "| %s | %s | %.0f | %.3f | %.3f | %.1f | %s | %d | %d | %s |\n", l, w, r, a / 1000, b / 1000, c, q, e, o, u }'
	fi
}

# Allocations per hit, from the Go benchmarks (quick, and after the load
# runs so they do not disturb them).
GO_HIT_BENCH=$(cd "$REPO_DIR" && go test -run '^$' -bench 'GatewayHit|Hit1K|Hit64K' -benchmem -benchtime 200000x ./cache/ 2>/dev/null | grep -E '^Benchmark' || true)
NGINX_VERSION=$("$NGINX_BIN" -v 2>&1 | head -n1)
WRK_VERSION=$(wrk -v 2>&1 | head -n1 || true)

mkdir -p "$BENCH_DIR/results"
SECTION="$BENCH_DIR/results/20-cache.md"
{
	echo "## Cache (hits, stampede, hot no-store)"
	echo
	echo "Measured $MEASURE_START to $(date -u "+%H:%M:%S UTC") by \`bench/cache.sh\`:"
	echo "wrk rows $DURATION per run after a $WARMUP warmup, $RUNS run(s) per row;"
	echo "$STAMPEDE_ROUNDS stampede round(s) per target."
	echo "Pinning: $PIN_NOTE."
	echo
	echo "- $NGINX_VERSION: 1 worker, \`proxy_cache\` in \`keys_zone=10m max_size=256m\` on"
	echo "  ${SHM%/*}, \`use_temp_path=off\`, no \`proxy_cache_valid\`, \`proxy_cache_lock on\`,"
	echo "  upstream \`keepalive 256\`, \`sendfile\` and \`tcp_nopush\` off (nginx's defaults)"
	echo "- $VARNISH_VERSION: \`$VARNISH_CMD\`"
	echo "  (\$SHM: a directory in ${SHM%/*}), builtin VCL, default thread pools"
	echo "- gateway: \`cache: {max_size: 256MiB, max_object_size: 8MiB}\`, route \`cache: {enabled: true}\`,"
	echo "  \`access_log: {enabled: false}\` (as nginx's \`access_log off\`),"
	echo "  upstream \`protocol: http1\`, \`max_idle_per_target: 256\`"
	echo "- $WRK_VERSION"
	env_lines
	echo
	echo "### Cache hits ($CONNS connections)"
	echo
	echo "The origin answers \`Cache-Control: public, max-age=3600\` with an ETag."
	echo "Each proxy was warmed with one request per URL and the next response"
	echo "checked to be a hit (nginx \`X-Cache-Status: HIT\`, Varnish two ids in"
	echo "\`X-Varnish\`, gateway \`Cache-Status: gateway; hit\`). origin req: requests"
	echo "that reached the origin during the measured run (0 = all hits)."
	echo
	echo "| target | body bytes | req/s | p50 ms | p99 ms | CPU µs/req | req/s ÷ nginx | CPU/req ÷ nginx | origin req | errors | other load % | runs |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	for i in "${!ROWS[@]}"; do
		IFS='|' read -r id section t what path mode status <<<"${ROWS[$i]}"
		[[ $section == hit ]] || continue
		load_row "$id" "${LABEL[$t]}" "$what" "hit$what-nginx" origin "$status"
	done
	echo
	echo "### Stampede ($STAMPEDE_CLIENTS clients, one cold URL, origin takes $STAMPEDE_MS ms)"
	echo
	echo "\`bench/stampede\` opens one connection per client, then sends all"
	echo "$STAMPEDE_CLIENTS GETs for a new cacheable URL at once. origin requests: how many"
	echo "of them the origin saw (the origin alone: all). Latency is per client,"
	echo "from the burst to the end of its response; $STAMPEDE_MS ms of it is the origin."
	echo
	echo "| target | origin requests | p50 ms | max ms | errors | other load % | rounds |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
	for t in "${TARGETS[@]}"; do
		all="$TMP/out/stampede-$t.samples"
		f="$TMP/out/stampede-$t.used"
		if [[ ! -s "$all" ]]; then
			MISSING=1
			echo "| ${LABEL[$t]} | ${WHY[$t]:-not measured: stampede failed} | | | | | |"
			continue
		fi
		used_samples "$all" "$f" 5
		awk -v l="${LABEL[$t]}" -v n="$(median 3 "$f")" -v lst="$(awk '{print $3}' "$f" | paste -sd, -)" \
			-v a="$(median 1 "$f")" -v b="$(median 2 "$f")" -v e="$(median 4 "$f")" -v o="$(max_col 5 "$f")" \
			-v u="$(wc -l <"$f")/$(wc -l <"$all")" 'BEGIN {
			printf "| %s | %s (%s) | %.1f | %.1f | %d | %d | %s |\n", l, n, lst, a, b, e, o, u }'
	done
	echo
	echo "### Hot no-store URL vs distinct no-store URLs ($CONNS connections)"
	echo
	echo "The origin answers \`Cache-Control: no-store\` (1 KiB). \"one URL\": every"
	echo "request is for \`/nostore\`; \"distinct URLs\": \`/nostore?i=N\`, N never"
	echo "repeating. Both through the same wrk Lua script. hot ÷ distinct near 1:"
	echo "uncacheable requests for one URL are not serialized."
	echo
	echo "| target | URLs | req/s | p50 ms | p99 ms | CPU µs/req | req/s hot ÷ distinct | errors | other load % | runs |"
	echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	for i in "${!ROWS[@]}"; do
		IFS='|' read -r id section t what path mode status <<<"${ROWS[$i]}"
		[[ $section == nostore ]] || continue
		if [[ $mode == hot ]]; then
			load_row "$id" "${LABEL[$t]}" "$what" "distinct-$t" hot "$status"
		else
			load_row "$id" "${LABEL[$t]}" "$what" none distinct "$status"
		fi
	done
	echo
	echo "Every number is the median over the runs (rounds) counted in \"runs\""
	echo "(used/measured: runs that other processes disturbed are left out when"
	echo "the row has undisturbed ones). CPU µs/req is user+system time of the"
	echo "server under test (nginx: master, worker, cache manager; Varnish: manager"
	echo "and worker process) over the measured run, divided by requests completed;"
	echo "it excludes the origin. Ratios to nginx: above 1 is more req/s, or more"
	echo "CPU per request, than nginx. errors counts non-2xx responses and socket"
	echo "errors (wrk gives up on a request after $WRK_TIMEOUT)."
	note_other_load
	if [[ -n "$GW_STATS" ]]; then
		echo
		echo "Gateway \`/cache/stats\` after the runs: \`$GW_STATS\`"
	fi
	if [[ -n "$GO_HIT_BENCH" ]]; then
		echo
		echo "### Allocations per hit (\`go test -bench -benchmem ./cache/\`)"
		echo
		echo "In-process, no sockets: \`BenchmarkGatewayHit\` is the whole route handler"
		echo "(routing, X-Forwarded rules, cache lookup and serving) for a 1 KiB hit;"
		echo "the others are the cache middleware alone. net/http's own per-request"
		echo "allocations (request, header maps, connection buffers) are not included."
		echo
		echo '```'
		echo "$GO_HIT_BENCH"
		echo '```'
	fi
} >"$SECTION"

publish_section "$SECTION" "some targets were not measured; see the tables"
