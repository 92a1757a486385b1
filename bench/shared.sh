#!/usr/bin/env bash
# Shared cache tier benchmark: three gateways sharing a Redis, on loopback.
#   a. L2 hit (a replica whose memory never held the object, the object in
#      Redis) against L1 hit (its memory) and pass-through (a route that
#      does not cache), 1 KiB and 64 KiB, req/s and p50/p99;
#   b. stampede: 3 x 100 clients at once for one cold URL (origin 200 ms),
#      spread over the 3 gateways with the tier, 3 gateways without it and
#      3 independent nginx proxy_cache servers (proxy_cache_lock on);
#      origin requests and client p50/max;
#   c. purge propagation: purge at replica 3, time until replicas 1 and 2
#      miss (p50/p99 over PURGES purges);
#   d. Redis down (SIGSTOP of the redis-server this script started): time
#      until the breaker opens, and p99 of L1 hits and of misses with the
#      breaker open against Redis up.
#
# How each L2 hit is made real: for every run and size a new range of
# URLs (/cacheable/SIZE?k=N, N never repeating) is fetched once through
# replica 1, which stores each in its memory and, after the response, in
# Redis. Then each URL is read exactly once through replica 2, whose
# memory has never seen it: every answer must carry
# "Cache-Status: gateway; hit; ...; detail="shared"" (checked per response,
# the count of others is printed as "mismatched"). The second pass over
# the same URLs on replica 2 is the L1 row (hits without detail="shared"),
# and /pass/cacheable/SIZE?k=N on replica 2 (a route without cache, to
# the same origin path) the pass-through row. All three rows use the same
# client (bench/sharedbench get), connections and request counts.
#
# Usage: bash bench/shared.sh
# Knobs (environment):
#   RUNS=3            runs per row; the median is reported
#   QUICK=1           smoke run: RUNS=1 and fewer requests
#   CONNS=16          client connections of the a/d rows
#   N_SMALL=20000 N_LARGE=2000  distinct URLs per run, 1 KiB and 64 KiB
#   STAMPEDE_ROUNDS=5 stampede rounds per target (QUICK: 2)
#   PURGES=20         purges per run (QUICK: 5)
#   PORT_BASE=30000   first of the loopback ports used (+0..+50)
#   LOAD_CPU=0 PROXY_CPU=1 KEEP_TMP=1 OTHER_MAX RETRIES QUIET_WAIT  as in run.sh
#
# Writes bench/results/80-shared.md and reassembles bench/RESULTS.md.
# Exits 2 when something could not be measured (the gateway lacks the
# tier, a target failed), 1 on a harness error.

# PID_NAME variables are set by start() (lib.sh) through eval.
# shellcheck disable=SC2153
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
bench_knobs
CONNS="${CONNS:-16}"
if [[ "${QUICK:-0}" == "1" ]]; then
	N_SMALL="${N_SMALL:-2000}"
	N_LARGE="${N_LARGE:-300}"
	STAMPEDE_ROUNDS="${STAMPEDE_ROUNDS:-2}"
	PURGES="${PURGES:-5}"
fi
N_SMALL="${N_SMALL:-20000}"
N_LARGE="${N_LARGE:-2000}"
STAMPEDE_ROUNDS="${STAMPEDE_ROUNDS:-5}"
PURGES="${PURGES:-20}"
STAMPEDE_PER=100 # clients per gateway
STAMPEDE_MS=200
for v in CONNS N_SMALL N_LARGE STAMPEDE_ROUNDS PURGES; do
	[[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v=${!v}: must be a positive integer"
done
PORT_BASE="${PORT_BASE:-30000}"
HOST=bench # every request names this host, so the replicas share keys
MAX_TIME=60s

P_ORIGIN=$PORT_BASE
P_REDIS=$((PORT_BASE + 50))
# gw1..3 with the tier, nt1..3 without it, ng1..3 nginx servers.
declare -A PORT ADMIN
for i in 1 2 3; do
	PORT[gw$i]=$((PORT_BASE + i))
	ADMIN[gw$i]=$((PORT_BASE + 10 + i))
	PORT[nt$i]=$((PORT_BASE + 20 + i))
	ADMIN[nt$i]=$((PORT_BASE + 30 + i))
	PORT[ng$i]=$((PORT_BASE + 40 + i))
done
base() { echo "http://127.0.0.1:${PORT[$1]}"; }
admin() { echo "http://127.0.0.1:${ADMIN[$1]}"; }

# ---------------------------------------------------------------- tools
bench_tools # nginx, wrk, curl (and varnish, h2load, unused here)
if ! command -v redis-server >/dev/null; then
	sudo=""
	[[ $(id -u) -eq 0 ]] || sudo=sudo
	log "installing redis-server"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
fi
REDIS_BIN="$(command -v redis-server)"
bench_pinning
bench_tmp
for p in $P_ORIGIN $P_REDIS "${PORT[@]}" "${ADMIN[@]}"; do
	port_free "$p" || die "port 127.0.0.1:$p is in use; set PORT_BASE to another range"
done

log "building origin and sharedbench"
(cd "$REPO_DIR" && go build -o "$TMP/origin" ./bench/origin && go build -o "$TMP/sharedbench" ./bench/sharedbench) ||
	die "building bench/origin or bench/sharedbench failed"
SB="$TMP/sharedbench"

# gw_conf NAME SHARED writes $TMP/NAME.yaml: route / caching, route /pass
# not caching (the pass-through row), with cache.shared when SHARED is 1.
gw_conf() {
	{
		cat <<EOF
shutdown_grace: 5s
log:
  level: warn
access_log:
  enabled: false
cache:
  # Large enough that the runs' objects all fit: an L1 that evicts (or
  # whose admission policy refuses) would turn L1 rows into L2 reads.
  max_size: 2GiB
  max_object_size: 8MiB
EOF
		if [[ $2 == 1 ]]; then
			cat <<EOF
  shared:
    addresses: ["redis://127.0.0.1:$P_REDIS"]
    timeout: 10ms
    write_concurrency: 4
    write_queue: 1024
    purge_bound: 1s
    lease_ttl: 2s
    breaker: { failures: 5, cool_down: 1s }
EOF
		fi
		cat <<EOF
listeners:
  - address: "127.0.0.1:${PORT[$1]}"
admin:
  address: "127.0.0.1:${ADMIN[$1]}"
upstreams:
  origin:
    targets: ["http://127.0.0.1:$P_ORIGIN"]
    protocol: http1
    max_idle_per_target: 256
routes:
  - name: pass
    path: /pass
    strip_prefix: true
    upstream: origin
  - name: cached
    path: /
    upstream: origin
    cache:
      enabled: true
EOF
	} >"$TMP/$1.yaml"
}
for i in 1 2 3; do
	gw_conf "gw$i" 1
	gw_conf "nt$i" 0
done

MISSING=0
WHY_NT=$(build_gateway "$TMP/nt1.yaml" "config")
WHY_TIER=$WHY_NT
# Before the tier exists the gateway rejects the cache.shared keys.
if [[ -z "$WHY_TIER" ]] && ! "$TMP/gateway" validate -config "$TMP/gw1.yaml" >"$TMP/gw-validate.log" 2>&1; then
	WHY_TIER="not measured: gateway rejected the cache.shared config ($(one_line "$TMP/gw-validate.log"))"
fi
[[ -z "$WHY_TIER" ]] || log "$WHY_TIER"

# ---------------------------------------------------------------- servers
start ORIGIN "$TMP/origin.log" "${PIN_LOAD[@]}" "$TMP/origin" -addr "127.0.0.1:$P_ORIGIN"
wait_http origin "$PID_ORIGIN" "$TMP/origin.log" "http://127.0.0.1:$P_ORIGIN/" || die "origin did not start"

# Redis as the tier wants it: no persistence, LRU at maxmemory, loopback.
start REDIS "$TMP/redis.log" "${PIN_LOAD[@]}" "$REDIS_BIN" --bind 127.0.0.1 --port "$P_REDIS" \
	--save "" --appendonly no --maxmemory 1gb --maxmemory-policy allkeys-lru --dir "$TMP" --protected-mode yes
for _ in $(seq 1 50); do
	redis_ping=$( (exec 3<>"/dev/tcp/127.0.0.1/$P_REDIS" && printf 'PING\r\n' >&3 && timeout 1 head -c 7 <&3) 2>/dev/null || true)
	[[ "$redis_ping" == "+PONG"* ]] && break
	sleep 0.1
done
[[ "${redis_ping:-}" == "+PONG"* ]] || { tail -n 20 "$TMP/redis.log" >&2; die "redis-server did not start"; }

# Three nginx servers in one nginx, each with a cache of its own (its own
# keys_zone and directory) and proxy_cache_lock on: three independent
# caches, as three nginx replicas would be.
mkdir -p "$TMP/nginx/logs"
{
	nginx_conf_head
	for i in 1 2 3; do
		cat <<EOF
    proxy_cache_path $TMP/nginx/cache$i levels=1:2 keys_zone=c$i:10m max_size=256m use_temp_path=off;
    server {
        listen 127.0.0.1:${PORT[ng$i]};
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache c$i;
            proxy_cache_lock on;
        }
    }
EOF
	done
	echo "}"
} >"$TMP/nginx/nginx.conf"
start_nginx "$(base ng1)/" "$(base ng2)/" "$(base ng3)/"

# start_gws PREFIX VAR starts the three gateways PREFIX1..3 (pinned to
# the server core); sets VAR to why not when one does not start.
start_gws() {
	local i n pidvar
	for i in 1 2 3; do
		n=$1$i
		start "${n^^}" "$TMP/$n.log" "${PIN_PROXY[@]}" "$TMP/gateway" run -config "$TMP/$n.yaml"
		pidvar="PID_${n^^}"
		if ! wait_http "$n" "${!pidvar}" "$TMP/$n.log" "$(admin "$n")/readyz" ||
			! wait_http "$n" "${!pidvar}" "$TMP/$n.log" "$(base "$n")/pass/"; then
			printf -v "$2" '%s' "not measured: gateway $n did not start ($(one_line "$TMP/$n.log"))"
			return
		fi
	done
}
[[ -n "$WHY_TIER" ]] || start_gws gw WHY_TIER
[[ -n "$WHY_NT" ]] || start_gws nt WHY_NT
[[ -z "$WHY_TIER" ]] || log "$WHY_TIER"

# A quick check that the tier works at all: a URL fetched through gw1
# is an L2 hit on gw2.
if [[ -z "$WHY_TIER" ]]; then
	curl -fsS -o /dev/null -H "Host: $HOST" "$(base gw1)/cacheable/1024?check=$$" || true
	sleep 0.5
	cs=$(curl -sS -D - -o /dev/null -H "Host: $HOST" "$(base gw2)/cacheable/1024?check=$$" | tr -d '\r' | grep -i '^cache-status:' || true)
	if [[ "$cs" != *'detail="shared"'* ]]; then
		WHY_TIER="not measured: a URL fetched through replica 1 was no L2 hit on replica 2 (${cs:-no Cache-Status})"
		log "$WHY_TIER"
	fi
fi

# sb OUT ARGS... runs sharedbench, bounded in time, output to OUT.
sb() {
	local out=$1
	shift
	timeout 300 "${PIN_LOAD[@]}" "$SB" "$@" >"$out" 2>&1
}
# field NAME FILE: the value of NAME= in the last line of FILE.
field() { tail -n1 "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

wait_quiet
mkdir -p "$TMP/out"
O="$TMP/out"

# ---------------------------------------------------------------- a. L2 vs L1 vs pass
# l2_fill (measure's warm step) fills a range of URLs never used before
# through replica 1, so that a repeated measurement (measure retries when
# other processes took the CPU) still reads objects that only Redis has;
# l2_read and the l1 and pass rows read the range last filled.
NEXT_START=0
l2_fill() {
	L_START=$NEXT_START
	NEXT_START=$((NEXT_START + L_N))
	log "  filling $L_N URLs from k=$L_START through replica 1"
	# Four connections: a fill faster than Redis takes the writes would
	# drop some (counted, by design), and those URLs would be no L2 hits.
	sb "$O/fill-$L_SIZE.$L_START" get -url "$(base gw1)$L_URL" -n "$L_N" -start "$L_START" -c 4 -host "$HOST" -max-time "$MAX_TIME" ||
		log "fill failed: $(tail -n1 "$O/fill-$L_SIZE.$L_START")"
	sleep 1 # the writes to Redis run after the responses
	log "  replica 1's writes to Redis so far: $(curl -fsS "http://127.0.0.1:${ADMIN[gw1]}/cache/stats" | tr -d ' \n' | grep -o '"writes":[0-9]*,"writes_dropped":[0-9]*' || echo unknown)"
}
l_read() { # ROW
	local args
	case $1 in
	l2) args=(-url "$(base gw2)$L_URL" -want 'detail="shared"') ;;
	l1) args=(-url "$(base gw2)$L_URL" -want 'gateway; hit' -not 'detail="shared"') ;;
	pass) args=(-url "$(base gw2)/pass$L_URL") ;;
	esac
	sb /dev/stdout get "${args[@]}" -n "$L_N" -start "$L_START" -c "$CONNS" -host "$HOST" -max-time "$MAX_TIME"
}
if [[ -z "$WHY_TIER" ]]; then
	for run in $(seq 1 "$RUNS"); do
		for size in 1024 65536; do
			L_N=$N_SMALL
			[[ $size == 1024 ]] || L_N=$N_LARGE
			L_SIZE=$size
			L_URL="/cacheable/$size?k=%d"
			NEXT_START=$((run * 10000000 + size * 100))
			log "run $run/$RUNS: $size B"
			for row in l2 l1 pass; do
				warm=:
				[[ $row != l2 ]] || warm=l2_fill
				measure "$O/$row-$size.$run" "$PID_GW2" "$warm" l_read "$row"
				line=$(tail -n1 "$O/$row-$size.$run")
				log "  $row: $line"
				[[ "$line" == n=* ]] || continue
				echo "$(field rps "$O/$row-$size.$run") $(field p50_ms "$O/$row-$size.$run") $(field p99_ms "$O/$row-$size.$run") $(field mismatched "$O/$row-$size.$run") $(field errors "$O/$row-$size.$run") $M_OTHER" >>"$O/$row-$size.samples"
			done
		done
	done
fi

# ---------------------------------------------------------------- b. stampede
declare -A SLABEL=([gw]="3 gateways, shared tier" [nt]="3 gateways, no tier" [ng]="3 nginx, proxy_cache_lock on")
declare -A SWHY=([gw]="$WHY_TIER" [nt]="$WHY_NT" [ng]="")
for round in $(seq 1 "$STAMPEDE_ROUNDS"); do
	for t in gw nt ng; do
		[[ -z "${SWHY[$t]}" ]] || continue
		uri="/slow?ms=$STAMPEDE_MS&k=$t-$round-$$"
		log "stampede round $round/$STAMPEDE_ROUNDS: ${SLABEL[$t]}"
		urls="$(base "${t}1")$uri,$(base "${t}2")$uri,$(base "${t}3")$uri"
		out="$O/stampede-$t.$round"
		ready=()
		if [[ $t == gw ]]; then
			ready=(-ready "http://127.0.0.1:${ADMIN[gw1]}/cache/stats,http://127.0.0.1:${ADMIN[gw2]}/cache/stats,http://127.0.0.1:${ADMIN[gw3]}/cache/stats")
		fi
		timeout 120 "${PIN_LOAD[@]}" "$SB" burst -urls "$urls" -n "$STAMPEDE_PER" -host "$HOST" \
			-warm "/slow?ms=50&nostore=1&w=$t-$round-$$-%d" "${ready[@]}" >"$out" 2>&1 || true
		oreq=$(curl -fsS --max-time 2 --get --data-urlencode "uri=$uri" "http://127.0.0.1:$P_ORIGIN/_count" || echo x)
		log "  $(tail -n1 "$out") origin_requests=$oreq"
		[[ "$(tail -n1 "$out")" == n=* && "$oreq" =~ ^[0-9]+$ ]] || continue
		echo "$oreq $(field p50_ms "$out") $(field max_ms "$out") $(field errors "$out")" >>"$O/stampede-$t.samples"
	done
done

# ---------------------------------------------------------------- c. purge propagation
if [[ -z "$WHY_TIER" ]]; then
	for run in $(seq 1 "$RUNS"); do
		log "run $run/$RUNS: $PURGES purges at replica 3"
		out="$O/purge.$run"
		sb "$out" purge -replicas "$(base gw1),$(base gw2),$(base gw3)" -admin "$(admin gw3)" \
			-path "/cacheable/1024?purge=%d&r=$run" -n "$PURGES" -host "$HOST" -timeout 5s || true
		log "  $(tail -n1 "$out")"
		[[ "$(tail -n1 "$out")" == samples=* ]] || continue
		echo "$(field p50_ms "$out") $(field p99_ms "$out") $(field max_ms "$out") $(field purge_p50_ms "$out") $(field timeouts "$out")" >>"$O/purge.samples"
	done
fi

# ---------------------------------------------------------------- d. Redis down
# L1 hits: a range of URLs read twice through replica 1 (the second pass
# is measured). Misses: a new range, each URL once. Once with Redis up,
# once with it stopped and the breaker open.
down_rows() { # STATE RUN
	local s=$((90000000 + $2 * 100000)) state=$1 n=$((N_SMALL / 4))
	[[ $state == up ]] || s=$((s + 50000))
	sb /dev/null get -url "$(base gw1)/cacheable/1024?d=%d" -n "$n" -start "$s" -c "$CONNS" -host "$HOST" -max-time "$MAX_TIME" || true
	sb "$O/down-hit-$state.$2" get -url "$(base gw1)/cacheable/1024?d=%d" -n "$n" -start "$s" -c "$CONNS" -host "$HOST" -want 'gateway; hit' -max-time "$MAX_TIME" || true
	sb "$O/down-miss-$state.$2" get -url "$(base gw1)/cacheable/1024?m=%d" -n "$n" -start "$s" -c "$CONNS" -host "$HOST" -want 'fwd=uri-miss' -max-time "$MAX_TIME" || true
	local r
	for r in hit miss; do
		log "  redis $state, $r: $(tail -n1 "$O/down-$r-$state.$2")"
		[[ "$(tail -n1 "$O/down-$r-$state.$2")" == n=* ]] || continue
		echo "$(field p50_ms "$O/down-$r-$state.$2") $(field p99_ms "$O/down-$r-$state.$2") $(field rps "$O/down-$r-$state.$2")" >>"$O/down-$r-$state.samples"
	done
}
if [[ -z "$WHY_TIER" ]]; then
	for run in $(seq 1 "$RUNS"); do
		log "run $run/$RUNS: Redis up, then stopped"
		down_rows up "$run"
		# The breaker opens on failed operations: 200 misses a second go to
		# replica 1 meanwhile. sharedbench sends SIGSTOP itself, to the PID
		# of the redis-server started above, so the clock starts with it.
		if sb "$O/open.$run" breaker -admin "$(admin gw1)" -want open -signal stop -pid "$PID_REDIS" \
			-url "$(base gw1)/cacheable/1024?b=$run-%d" -rate 200 -timeout 15s; then
			echo "$(field ms "$O/open.$run")" >>"$O/open.samples"
			down_rows down "$run"
		else
			log "  breaker did not open: $(tail -n1 "$O/open.$run")"
		fi
		if sb "$O/close.$run" breaker -admin "$(admin gw1)" -want closed -signal cont -pid "$PID_REDIS" -timeout 15s; then
			echo "$(field ms "$O/close.$run")" >>"$O/close.samples"
		else
			kill -CONT "$PID_REDIS" 2>/dev/null || true
			log "  breaker did not close: $(tail -n1 "$O/close.$run")"
		fi
	done
fi
GW_STATS=""
[[ -n "$WHY_TIER" ]] || GW_STATS=$(curl -fsS --max-time 2 "$(admin gw2)/cache/stats" 2>/dev/null | tr -d '\n' | tr -s ' ' | cut -c1-600 || true)

# ---------------------------------------------------------------- report
med() { [[ -s "$2" ]] && median "$1" "$2" || echo ""; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b + 0 > 0) printf "%.2f", a / b; else print "–" }'; }
SECTION="$BENCH_DIR/results/80-shared.md"
mkdir -p "$BENCH_DIR/results"
{
	echo "## Shared cache tier (3 replicas, Redis)"
	echo
	echo "Measured $MEASURE_START to $(date -u "+%H:%M:%S UTC") by \`bench/shared.sh\`: $RUNS run(s) per row,"
	echo "$CONNS connections, $N_SMALL (1 KiB) and $N_LARGE (64 KiB) distinct URLs per run; $STAMPEDE_ROUNDS stampede round(s);"
	echo "$PURGES purges per run. Pinning: $PIN_NOTE (Redis with the origin and the client)."
	echo
	echo "- $("$REDIS_BIN" --version | head -n1): \`--save \"\" --appendonly no --maxmemory 1gb --maxmemory-policy allkeys-lru\`"
	echo "- gateways: \`cache: {max_size: 2GiB, shared: {addresses: [redis://127.0.0.1:$P_REDIS], timeout: 10ms}}\`, access log off"
	echo "- $("$NGINX_BIN" -v 2>&1 | head -n1)"
	env_lines
	echo
	echo "### L2 hit vs L1 hit vs pass-through (replica 2)"
	echo
	echo "L2: each URL read once on a replica whose memory never held it, from Redis"
	echo "(every answer checked for \`detail="shared"\`; mismatched counts the others)."
	echo "L1: the same URLs again, from its memory. pass: a route without cache."
	echo
	echo "| body | row | req/s | p50 ms | p99 ms | req/s ÷ L1 | mismatched | errors | runs |"
	echo "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	for size in 1024 65536; do
		for row in l2 l1 pass; do
			f="$O/$row-$size.samples"
			if [[ ! -s "$f" ]]; then
				MISSING=1
				echo "| $size | $row | ${WHY_TIER:-not measured} | | | | | | |"
				continue
			fi
			echo "| $size | $row | $(med 1 "$f") | $(med 2 "$f") | $(med 3 "$f") | $(ratio "$(med 1 "$f")" "$(med 1 "$O/l1-$size.samples")") | $(med 4 "$f") | $(med 5 "$f") | $(wc -l <"$f") |"
		done
	done
	echo
	echo "### Stampede ($((3 * STAMPEDE_PER)) clients over 3 servers, one cold URL, origin $STAMPEDE_MS ms)"
	echo
	echo "| target | origin requests (each round) | p50 ms | max ms | errors | rounds |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: |"
	for t in gw nt ng; do
		f="$O/stampede-$t.samples"
		if [[ ! -s "$f" ]]; then
			MISSING=1
			echo "| ${SLABEL[$t]} | ${SWHY[$t]:-not measured} | | | | |"
			continue
		fi
		echo "| ${SLABEL[$t]} | $(med 1 "$f") ($(awk '{print $1}' "$f" | paste -sd, -)) | $(med 2 "$f") | $(med 3 "$f") | $(med 4 "$f") | $(wc -l <"$f") |"
	done
	echo
	echo "### Purge propagation (purge at replica 3, replicas 1 and 2 polled)"
	echo
	echo "| p50 ms | p99 ms | max ms | purge request p50 ms | timeouts (5 s) | runs |"
	echo "| ---: | ---: | ---: | ---: | ---: | ---: |"
	if [[ -s "$O/purge.samples" ]]; then
		f="$O/purge.samples"
		echo "| $(med 1 "$f") | $(med 2 "$f") | $(med 3 "$f") | $(med 4 "$f") | $(med 5 "$f") | $(wc -l <"$f") |"
	else
		MISSING=1
		echo "| ${WHY_TIER:-not measured} | | | | | |"
	fi
	echo
	echo "### Redis stopped (SIGSTOP), breaker open, replica 1"
	echo
	echo "Time from SIGSTOP to the breaker reported open (200 misses/s meanwhile): $(med 1 "$O/open.samples") ms;"
	echo "from SIGCONT to closed: $(med 1 "$O/close.samples") ms."
	echo
	echo "| row | p50 ms up | p50 ms down | p99 ms up | p99 ms down | p99 down ÷ up |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: |"
	for r in hit miss; do
		u="$O/down-$r-up.samples" d="$O/down-$r-down.samples"
		if [[ ! -s "$u" || ! -s "$d" ]]; then
			MISSING=1
			echo "| L1 $r | ${WHY_TIER:-not measured} | | | | |"
			continue
		fi
		echo "| $r | $(med 1 "$u") | $(med 1 "$d") | $(med 2 "$u") | $(med 2 "$d") | $(ratio "$(med 2 "$d")" "$(med 2 "$u")") |"
	done
	echo
	echo "Every number is the median over the runs. Latencies are per request, from"
	echo "the client (bench/sharedbench), on loopback."
	if [[ -n "$GW_STATS" ]]; then
		echo
		echo "Replica 2's \`/cache/stats\` after the runs: \`$GW_STATS\`"
	fi
} >"$SECTION"

publish_section "$SECTION" "some rows were not measured; see the tables"
