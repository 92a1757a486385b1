#!/usr/bin/env bash
# Range benchmark: random 64 KiB ranges of one 64 MiB file served from the
# cache by the gateway with `cache.slice: 1MiB`, by nginx with its slice
# module (1 MiB slices, each cached) and by nginx `proxy_cache` holding the
# whole file, all in front of the same origin (bench/rangeorigin:
# http.ServeContent, strong ETag, counts the body bytes it sends).
#
#   warm: after a full GET that fills the cache, random ranges from
#         RANGE_CONC connections for DURATION: req/s, p50/p99, CPU of the
#         server process per request;
#   cold: from an empty cache (a URL no run used before), COLD_REQS random
#         ranges one after another: the origin bytes and requests they
#         cost, and their p50/p99.
#
# Usage: bash bench/ranges.sh
# Knobs (environment):
#   RUNS=3 DURATION=10s WARMUP=2s   runs (medians), warm run length, warm-up
#   QUICK=1         smoke test: RUNS=1 DURATION=2s COLD_REQS=50
#   COLD_REQS=200   ranges per cold run
#   RANGE_CONC=16   connections of the warm runs
#   FILE_MIB=64 RANGE_KIB=64  file size and range length
#   PORT_BASE=32500 ports PORT_BASE..PORT_BASE+4
#   LOAD_CPU=0 PROXY_CPU=1  cores for client+origin and the server under test
#   KEEP_TMP=1      keep the temp dir (configs, logs, raw output)
#   OTHER_MAX=15 RETRIES=2 QUIET_WAIT=60  interference handling (lib.sh)
#
# Writes bench/results/95-ranges.md and reassembles bench/RESULTS.md.
# Exits 1 on a harness error, 2 when a row could not be measured.

# PID_NAME variables are set by start() (lib.sh) through eval.
# shellcheck disable=SC2153
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
QUIET_WAIT="${QUIET_WAIT:-60}"
[[ "${QUICK:-0}" == "1" ]] && COLD_REQS="${COLD_REQS:-50}"
bench_knobs
COLD_REQS="${COLD_REQS:-200}"
RANGE_CONC="${RANGE_CONC:-16}"
FILE_MIB="${FILE_MIB:-64}"
RANGE_KIB="${RANGE_KIB:-64}"
PORT_BASE="${PORT_BASE:-32500}"
for v in COLD_REQS RANGE_CONC FILE_MIB RANGE_KIB; do
	[[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v=${!v}: must be a positive integer"
done
((RANGE_KIB <= FILE_MIB * 1024)) || die "RANGE_KIB=$RANGE_KIB: larger than the file"
SIZE=$((FILE_MIB << 20))
LEN=$((RANGE_KIB << 10))
P_ORIGIN=$PORT_BASE
P_GW=$((PORT_BASE + 1))
P_GW_ADMIN=$((PORT_BASE + 2))
P_NSLICE=$((PORT_BASE + 3))
P_NWHOLE=$((PORT_BASE + 4))
# The gateway keeps every run's cold file and the warm one in memory.
GW_MAX_MIB=$(((RUNS + 2) * FILE_MIB + 64))

bench_tools
bench_pinning
bench_tmp
for p in $P_ORIGIN $P_GW $P_GW_ADMIN $P_NSLICE $P_NWHOLE; do
	port_free "$p" || die "port 127.0.0.1:$p is in use; set PORT_BASE to another range"
done
"$NGINX_BIN" -V 2>&1 | grep -q -- --with-http_slice_module ||
	die "$NGINX_BIN is built without --with-http_slice_module"
# nginx's caches in memory when /dev/shm is there, as the gateway's is.
if [[ -d /dev/shm && -w /dev/shm ]]; then
	SHM="$(mktemp -d /dev/shm/gwbench-ranges.XXXXXX)"
	chmod 755 "$SHM"
	EXTRA_RM+=("$SHM")
else
	SHM="$TMP"
fi

log "building rangeorigin and rangebench"
(cd "$REPO_DIR" && go build -o "$TMP/rangeorigin" ./bench/rangeorigin &&
	go build -o "$TMP/rangebench" ./bench/rangebench) >"$TMP/build.log" 2>&1 || {
	cat "$TMP/build.log" >&2
	die "build failed"
}

cat >"$TMP/gateway.yaml" <<YAML
shutdown_grace: 5s
log:
  level: warn
# As nginx here (access_log off); bench/observability.sh measures its cost.
access_log:
  enabled: false
cache:
  max_size: ${GW_MAX_MIB}MiB
  # Room for the whole file on the route without slices.
  max_object_size: $((FILE_MIB + 16))MiB
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
  # The whole file as one stored object, ranges cut from it.
  - path: /whole/
    upstream: origin
    cache:
      enabled: true
  - path: /
    upstream: origin
    cache:
      enabled: true
      slice: 1MiB
YAML
declare -A WHY
WHY[gw]=$(build_gateway "$TMP/gateway.yaml" "slice config")
[[ -z "${WHY[gw]}" ]] || log "${WHY[gw]}"

start ORIGIN "$TMP/origin.log" "${PIN_LOAD[@]}" "$TMP/rangeorigin" -addr "127.0.0.1:$P_ORIGIN" -size "$SIZE"
wait_http origin "$PID_ORIGIN" "$TMP/origin.log" "http://127.0.0.1:$P_ORIGIN/_bytes" || die "origin did not start"

mkdir -p "$TMP/nginx/logs"
{
	nginx_conf_head
	cat <<NGX
    proxy_cache_path $SHM/nginx-slice levels=1:2 keys_zone=slice:10m max_size=${GW_MAX_MIB}m use_temp_path=off;
    proxy_cache_path $SHM/nginx-whole levels=1:2 keys_zone=whole:10m max_size=${GW_MAX_MIB}m use_temp_path=off;
    # The slice module: 1 MiB aligned slices, each its own cache entry.
    server {
        listen 127.0.0.1:$P_NSLICE;
        location / {
            slice 1m;
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache slice;
            proxy_cache_key \$uri\$is_args\$args\$slice_range;
            proxy_set_header Range \$slice_range;
            proxy_cache_valid 200 206 1h;
            proxy_cache_lock on;
        }
    }
    # The whole file as one entry: with proxy_cache, nginx drops the
    # client's Range towards the origin, fetches the whole file on a miss
    # and answers ranges from it.
    server {
        listen 127.0.0.1:$P_NWHOLE;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache whole;
            proxy_cache_valid 200 1h;
            proxy_force_ranges on;
            proxy_cache_lock on;
        }
    }
}
NGX
} >"$TMP/nginx/nginx.conf"
start_nginx "http://127.0.0.1:$P_NSLICE/_bytes" "http://127.0.0.1:$P_NWHOLE/_bytes"
if [[ -z "${WHY[gw]}" ]]; then
	start_gw "$TMP/gateway.yaml" "$P_GW_ADMIN" "$P_GW" || WHY[gw]="not measured: gateway did not start ($(one_line "$TMP/gateway.log"))"
	[[ -z "${WHY[gw]}" ]] && check_pinned gateway "$PROXY_CPU" "$PID_GW"
fi
WHY[gwwhole]=${WHY[gw]}
NGINX_VERSION=$("$NGINX_BIN" -v 2>&1 | head -n1)

TARGETS=(gw gwwhole nslice nwhole)
declare -A LABEL PORT PREFIX
LABEL[gw]="gateway \`cache.slice: 1MiB\`"
LABEL[gwwhole]="gateway (whole file)"
LABEL[nslice]="nginx \`slice 1m\`"
LABEL[nwhole]="nginx \`proxy_cache\` (whole file)"
PORT[gw]=$P_GW
PORT[gwwhole]=$P_GW
PREFIX=([gw]=/file [gwwhole]=/whole/file [nslice]=/file [nwhole]=/file)
PORT[nslice]=$P_NSLICE
PORT[nwhole]=$P_NWHOLE
server_pids() {
	case "$1" in
	gw | gwwhole) echo "$PID_GW" ;;
	*) echo "$PID_NGINX" $(child_pids "$PID_NGINX") ;;
	esac
}
origin_get() { curl -fsS --max-time 5 "http://127.0.0.1:$P_ORIGIN/$1"; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }

# Called through measure (lib.sh).
# shellcheck disable=SC2317
warm_fill() {
	timeout $(($(seconds "$WARMUP") + 120)) "${PIN_LOAD[@]}" "$TMP/rangebench" -url "$URL" -size "$SIZE" -len "$LEN" \
		-fill -c "$RANGE_CONC" -d "$WARMUP" >"$TMP/warmup.out" 2>&1 || log "  warm-up failed: $(one_line "$TMP/warmup.out")"
}
# shellcheck disable=SC2317
warm_run() {
	timeout "$LOAD_TIMEOUT" "${PIN_LOAD[@]}" "$TMP/rangebench" -url "$URL" -size "$SIZE" -len "$LEN" \
		-c "$RANGE_CONC" -d "$DURATION" -seed "$SEED"
}
# shellcheck disable=SC2317
nothing() { :; }
# shellcheck disable=SC2317
cold_run() {
	COLD_B0=$(origin_get _bytes)
	COLD_R0=$(origin_get _reqs)
	local rc=0
	timeout $((COLD_REQS * 10 + 120)) "${PIN_LOAD[@]}" "$TMP/rangebench" -url "$URL" -size "$SIZE" -len "$LEN" \
		-cold "$COLD_REQS" -seed "$SEED" || rc=$?
	COLD_B1=$(origin_get _bytes)
	COLD_R1=$(origin_get _reqs)
	return "$rc"
}

wait_quiet
MISSING=0
for t in "${TARGETS[@]}"; do : >"$TMP/warm-$t.txt"; : >"$TMP/cold-$t.txt"; done
for run in $(seq 1 "$RUNS"); do
	SEED=$run
	for t in "${TARGETS[@]}"; do
		[[ -z "${WHY[$t]:-}" ]] || continue
		# cold: a path no run has asked for, so every cache starts empty for it.
		URL="http://127.0.0.1:${PORT[$t]}${PREFIX[$t]}/cold-$run"
		log "run $run/$RUNS $t cold: $COLD_REQS ranges of $RANGE_KIB KiB"
		# Cold runs are not repeated: a repeat would find the cache filled.
		RETRIES_SAVED=$RETRIES
		RETRIES=0
		measure "$TMP/cold-$t-$run.out" "$(server_pids "$t")" nothing cold_run
		RETRIES=$RETRIES_SAVED
		line=$(grep -m1 '^mode=cold ' "$TMP/cold-$t-$run.out" || true)
		if ((M_RC != 0)) || [[ -z "$line" || "$(field errors "$line")" != 0 ]]; then
			log "  $t cold failed (exit $M_RC):"
			cat "$TMP/cold-$t-$run.out" >&2 || true
			MISSING=1
		else
			echo "$(awk -v b=$((COLD_B1 - COLD_B0)) 'BEGIN { printf "%.2f", b / 1048576 }') $((COLD_R1 - COLD_R0)) $(field p50_us "$line") $(field p99_us "$line") $M_OTHER" >>"$TMP/cold-$t.txt"
			log "  $line origin_MiB=$(awk -v b=$((COLD_B1 - COLD_B0)) 'BEGIN { printf "%.2f", b / 1048576 }') origin_reqs=$((COLD_R1 - COLD_R0))"
		fi
		URL="http://127.0.0.1:${PORT[$t]}${PREFIX[$t]}/warm"
		log "run $run/$RUNS $t warm: $RANGE_CONC connections, $DURATION"
		measure "$TMP/warm-$t-$run.out" "$(server_pids "$t")" warm_fill warm_run
		line=$(grep -m1 '^mode=warm ' "$TMP/warm-$t-$run.out" || true)
		if ((M_RC != 0)) || [[ -z "$line" ]]; then
			log "  $t warm failed (exit $M_RC):"
			cat "$TMP/warm-$t-$run.out" >&2 || true
			MISSING=1
			continue
		fi
		echo "$run $(field rps "$line") $(field p50_us "$line") $(field p99_us "$line") $(cpu_us_per_req "$M_TICKS" "$(field requests "$line")") $(field errors "$line") $M_OTHER" >>"$TMP/warm-$t.txt"
		log "  $line cpu_us/req=$(cpu_us_per_req "$M_TICKS" "$(field requests "$line")") other=${M_OTHER}%"
	done
done

# ratio_med T COL: median over the runs of T's COL ÷ the gateway's, same run.
ratio_med() {
	join <(sort -k1,1 "$TMP/warm-$1.txt") <(sort -k1,1 "$TMP/warm-gw.txt") |
		awk -v c="$2" -v n="$(awk 'NR==1 { print NF }' "$TMP/warm-gw.txt")" '$(c) > 0 && $(c + n - 1) > 0 { print $(c) / $(c + n - 1) }' |
		sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) printf "%.2f", v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

mkdir -p "$BENCH_DIR/results"
SECTION="$BENCH_DIR/results/95-ranges.md"
{
	echo "## Range requests from the cache (1 MiB slices vs the whole file)"
	echo
	echo "Measured $MEASURE_START to $(date -u "+%H:%M:%S UTC") by \`bench/ranges.sh\`:"
	echo "$RUNS run(s); warm rows $DURATION each after a full GET and $WARMUP of warm-up,"
	echo "$RANGE_CONC connections; cold rows $COLD_REQS ranges one after another."
	echo "Pinning: $PIN_NOTE."
	echo
	echo "- origin: \`bench/rangeorigin\`, one $FILE_MIB MiB deterministic file through \`http.ServeContent\`"
	echo "  (Range, strong \`ETag\`, \`Cache-Control: public, max-age=3600\`), counting the body bytes it sends"
	echo "- gateway: \`cache: {max_size: ${GW_MAX_MIB}MiB, max_object_size: $((FILE_MIB + 16))MiB}\`, access log off; one process, two routes:"
	echo "  \`/file/\` with \`cache: {enabled: true, slice: 1MiB}\`, and \`/whole/\` with \`cache: {enabled: true}\` (the warm fill's"
	echo "  full GET stores the whole file, ranges are cut from it; cold ranges go to the origin as sent and their 206s are kept as parts)"
	echo "- $NGINX_VERSION, 1 worker, caches on $([[ $SHM == /dev/shm/* ]] && echo tmpfs || echo "$TMP"):"
	echo "  slice: \`slice 1m; proxy_cache_key \$uri\$is_args\$args\$slice_range; proxy_set_header Range \$slice_range; proxy_cache_valid 200 206 1h;\`"
	echo "  whole file: \`proxy_cache\` with \`proxy_cache_valid 200 1h; proxy_force_ranges on;\` (nginx drops the Range towards the"
	echo "  origin when caching, stores the whole 200 and cuts ranges from it); both \`proxy_cache_lock on\`"
	echo "- client: \`bench/rangebench\`, Go's \`net/http\`, one $RANGE_KIB KiB range at a uniformly random offset per"
	echo "  request; every answer must be a 206 of exactly the asked bytes (checked against the file)"
	env_lines
	echo
	echo "### Warm: every range a hit"
	echo
	echo "| server | runs | req/s | p50 ms | p99 ms | server CPU µs/req | req/s ÷ gateway | CPU ÷ gateway | errors | other load % |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	for t in "${TARGETS[@]}"; do
		f="$TMP/warm-$t.txt"
		if [[ ! -s "$f" ]]; then
			echo "| ${LABEL[$t]} | ${WHY[$t]:-not measured (see the log)} | | | | | | | | |"
			continue
		fi
		used_samples "$f" "$f.used" 7
		rr=""; cr=""
		if [[ $t != gw && -s "$TMP/warm-gw.txt" ]]; then rr=$(ratio_med "$t" 2); cr=$(ratio_med "$t" 5); fi
		awk -v l="${LABEL[$t]}" -v r="$(wc -l <"$f.used")/$(wc -l <"$f")" -v rps="$(median 2 "$f.used")" \
			-v p50="$(median 3 "$f.used")" -v p99="$(median 4 "$f.used")" -v cpu="$(median 5 "$f.used")" \
			-v rr="$rr" -v cr="$cr" -v e="$(max_col 6 "$f.used")" -v o="$(max_col 7 "$f.used")" 'BEGIN {
			printf "| %s | %s | %.0f | %.2f | %.2f | %.1f | %s | %s | %d | %d |\n", l, r, rps, p50 / 1000, p99 / 1000, cpu, rr, cr, e, o }'
	done
	echo
	echo "### Cold: $COLD_REQS ranges from an empty cache"
	echo
	echo "| server | runs | origin MiB fetched | origin requests | p50 ms | p99 ms | other load % |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
	for t in "${TARGETS[@]}"; do
		f="$TMP/cold-$t.txt"
		if [[ ! -s "$f" ]]; then
			echo "| ${LABEL[$t]} | ${WHY[$t]:-not measured (see the log)} | | | | | |"
			continue
		fi
		awk -v l="${LABEL[$t]}" -v r="$(wc -l <"$f")" -v mib="$(median 1 "$f")" -v rq="$(median 2 "$f")" \
			-v p50="$(median 3 "$f")" -v p99="$(median 4 "$f")" -v o="$(max_col 5 "$f")" 'BEGIN {
			printf "| %s | %s | %.1f | %.0f | %.2f | %.2f | %d |\n", l, r, mib, rq, p50 / 1000, p99 / 1000, o }'
	done
	echo
	echo "Ratios (÷ gateway) are medians of same-run ratios. server CPU is the"
	echo "user+system time of the gateway process, or of nginx's master and"
	echo "worker, during the measured requests only, per request (ticks are"
	echo "${CLK_TCK}/s). Cold: origin MiB and requests are what the origin counted"
	echo "while the cold ranges ran (a slice costs 1 MiB on its first use; the"
	echo "whole-file cache fetches all $FILE_MIB MiB on the first miss); cold runs"
	echo "are not repeated when disturbed."
	note_medians
	note_other_load
} >"$SECTION"

publish_section "$SECTION" "some rows were not measured; see the log"
