#!/usr/bin/env bash
# Batch benchmark: what one POST /_batch of N GETs saves a client against
# the same N GETs sent one after another (one connection) and all at once,
# through the gateway, over HTTP/1.1 and over h2c. The origin waits a
# fixed DELAY_MS per request and answers no-store, and the route does not
# cache, so every GET reaches it (the origin's request count is checked).
#
# Usage: bash bench/batch.sh
# Knobs (environment):
#   ITEMS=10        GETs per round (batch items)
#   DELAY_MS=2      the origin's delay per request
#   ROUNDS=300      measured rounds per row (at most; QUICK: 50)
#   WARMUP_ROUNDS=30  unmeasured rounds before each row
#   MAX_TIME=30s    a row stops measuring after this long, whatever ROUNDS
#   BATCH_CONCURRENCY=10  the gateway's batch.concurrency
#   QUICK=1         smoke test: ROUNDS=50
#   PORT_BASE=30500 ports PORT_BASE (origin) and PORT_BASE+1 (gateway)
#   LOAD_CPU=0 PROXY_CPU=1  cores for client+origin and the gateway
#   KEEP_TMP=1      keep the temp dir (config, logs, raw output)
#   OTHER_MAX=15 RETRIES=2 QUIET_WAIT=60  interference handling (lib.sh)
#
# Writes bench/results/50-batch.md and reassembles bench/RESULTS.md.
# Every row is bounded by ROUNDS and MAX_TIME. Exits 1 on a harness
# error, 2 when a row could not be measured.

# PID_NAME variables are set by start() (lib.sh) through eval.
# shellcheck disable=SC2153
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
QUIET_WAIT="${QUIET_WAIT:-60}"
bench_knobs
ITEMS="${ITEMS:-10}"
DELAY_MS="${DELAY_MS:-2}"
if [[ "${QUICK:-0}" == "1" ]]; then
	ROUNDS="${ROUNDS:-50}"
fi
ROUNDS="${ROUNDS:-300}"
WARMUP_ROUNDS="${WARMUP_ROUNDS:-30}"
MAX_TIME="${MAX_TIME:-30s}"
BATCH_CONCURRENCY="${BATCH_CONCURRENCY:-10}"
PORT_BASE="${PORT_BASE:-30500}"
for v in ITEMS ROUNDS BATCH_CONCURRENCY; do
	[[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v=${!v}: must be a positive integer"
done
[[ "$DELAY_MS" =~ ^[0-9]+$ ]] || die "DELAY_MS=$DELAY_MS: must be whole milliseconds"
[[ "$WARMUP_ROUNDS" =~ ^[0-9]+$ ]] || die "WARMUP_ROUNDS=$WARMUP_ROUNDS: must be a whole number"
((ITEMS <= 50)) || die "ITEMS=$ITEMS: the gateway's batch.max_items is 50"
P_ORIGIN=$PORT_BASE
P_GW=$((PORT_BASE + 1))
GET_PATH="/slow?ms=$DELAY_MS&nostore=1"

[[ -x /usr/local/go/bin/go ]] && PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null || die "go not found (expected /usr/local/go/bin/go)"
command -v curl >/dev/null || die "curl not found"
bench_pinning
bench_tmp
for p in $P_ORIGIN $P_GW; do
	port_free "$p" || die "port 127.0.0.1:$p is in use; set PORT_BASE to another range"
done

log "building gateway, origin and batchbench"
(cd "$REPO_DIR" && go build -o "$TMP/gateway" . && go build -o "$TMP/origin" ./bench/origin &&
	go build -o "$TMP/batchbench" ./bench/batchbench) >"$TMP/build.log" 2>&1 || {
	cat "$TMP/build.log" >&2
	die "build failed"
}

cat >"$TMP/gateway.yaml" <<EOF
shutdown_grace: 5s
log:
  level: warn
# As nginx here (access_log off); bench/observability.sh measures its cost.
access_log:
  enabled: false
listeners:
  - address: "127.0.0.1:$P_GW"
    h2c: true
admin:
  address: "off"
upstreams:
  origin:
    targets: ["http://127.0.0.1:$P_ORIGIN"]
    protocol: http1
    max_idle_per_target: 256
batch:
  enabled: true
  concurrency: $BATCH_CONCURRENCY
routes:
  - path: /
    upstream: origin
    batchable: true
EOF
"$TMP/gateway" validate -config "$TMP/gateway.yaml" >&2 || die "the gateway rejected the bench config"

start ORIGIN "$TMP/origin.log" "${PIN_LOAD[@]}" "$TMP/origin" -addr "127.0.0.1:$P_ORIGIN"
wait_http origin "$PID_ORIGIN" "$TMP/origin.log" "http://127.0.0.1:$P_ORIGIN/" || die "origin did not start"
start GW "$TMP/gateway.log" "${PIN_PROXY[@]}" "$TMP/gateway" run -config "$TMP/gateway.yaml"
wait_http gateway "$PID_GW" "$TMP/gateway.log" "http://127.0.0.1:$P_GW/" || die "gateway did not start"
check_pinned gateway "$PROXY_CPU" "$PID_GW"

# shellcheck disable=SC2317
origin_count() { curl -fsS --max-time 5 "http://127.0.0.1:$P_ORIGIN/_count"; }

wait_quiet

# One row per protocol and mode, each its own bounded run, so the
# gateway's CPU can be charged to the mode.
MODES=(sequential parallel batch)
PROTOS=(h1 h2c)
declare -A LINE OTHER TICKS ORIGIN_PER_ROUND
MISSING=0
# nothing and row are called through measure (lib.sh).
# shellcheck disable=SC2317
nothing() { :; }
# row PROTO MODE runs one bounded batchbench and counts the origin's
# requests around it (ROW_BEFORE, ROW_AFTER); measure may repeat it.
# shellcheck disable=SC2317
row() {
	local rc=0
	ROW_BEFORE=$(origin_count)
	timeout $(($(seconds "$MAX_TIME") + 120)) "${PIN_LOAD[@]}" "$TMP/batchbench" \
		-url "http://127.0.0.1:$P_GW" -proto "$1" -modes "$2" -items "$ITEMS" \
		-path "$GET_PATH" -rounds "$ROUNDS" -warmup "$WARMUP_ROUNDS" -max-time "$MAX_TIME" || rc=$?
	ROW_AFTER=$(origin_count)
	return "$rc"
}
for proto in "${PROTOS[@]}"; do
	for mode in "${MODES[@]}"; do
		id="$proto-$mode"
		log "measuring $proto $mode ($ITEMS GETs per round, at most $ROUNDS rounds or $MAX_TIME)"
		measure "$TMP/$id.out" "$PID_GW" nothing row "$proto" "$mode"
		before=$ROW_BEFORE
		after=$ROW_AFTER
		line=$(grep -m1 "^proto=$proto mode=$mode " "$TMP/$id.out" || true)
		if ((M_RC != 0)) || [[ -z "$line" ]]; then
			log "  $id failed (exit $M_RC):"
			cat "$TMP/$id.out" >&2 || true
			MISSING=1
			continue
		fi
		LINE[$id]=$line
		OTHER[$id]=$M_OTHER
		TICKS[$id]=$M_TICKS
		rounds=$(sed -n 's/.* rounds=\([0-9]*\).*/\1/p' <<<"$line")
		ORIGIN_PER_ROUND[$id]=$(awk -v d=$((after - before)) -v r=$((rounds + WARMUP_ROUNDS)) 'BEGIN { printf "%.2f", d / r }')
		log "  $line origin_req/round=${ORIGIN_PER_ROUND[$id]} other=${M_OTHER}%"
	done
done

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

mkdir -p "$BENCH_DIR/results"
SECTION="$BENCH_DIR/results/50-batch.md"
{
	echo "## Batching (one batch of $ITEMS GETs vs $ITEMS GETs)"
	echo
	echo "Measured $MEASURE_START to $(date -u "+%H:%M:%S UTC") by \`bench/batch.sh\`:"
	echo "per row at most $ROUNDS rounds or $MAX_TIME after $WARMUP_ROUNDS warm-up rounds."
	echo "Pinning: $PIN_NOTE."
	echo
	echo "- origin: \`bench/origin\` \`$GET_PATH\`: waits $DELAY_MS ms, then 1 KiB JSON, \`Cache-Control: no-store\`"
	echo "- gateway: one route \`batchable: true\`, no cache, upstream \`protocol: http1\`, access log off;"
	echo "  \`batch: {enabled: true, concurrency: $BATCH_CONCURRENCY}\` (the default concurrency is 8); h2c listener"
	echo "- client: \`bench/batchbench\`, Go's \`net/http\` client, keep-alive, no compression"
	env_lines
	echo
	echo "A round gets $ITEMS responses: **sequential** sends $ITEMS GETs one after"
	echo "another on one connection; **parallel** sends them at once (HTTP/1.1: up"
	echo "to $ITEMS connections from the pool; h2c: $ITEMS streams on one connection);"
	echo "**batch** POSTs one \`/_batch\` of $ITEMS items, which the gateway runs"
	echo "in-process, all at once. Latency is per round, from the first byte sent"
	echo "to the last byte read. origin req/round: requests the origin counted"
	echo "per round ($ITEMS: every GET reached it). gateway CPU: user+system time"
	echo "of the gateway process per round."
	echo
	echo "| client → gateway | mode | rounds | mean ms | p50 ms | p90 ms | p99 ms | max ms | p50 ÷ sequential | gateway CPU µs/round | origin req/round | errors | other load % |"
	echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	for proto in "${PROTOS[@]}"; do
		label="HTTP/1.1"
		[[ $proto == h2c ]] && label="h2c"
		seq_p50=$(field p50_ms "${LINE[$proto-sequential]:-}")
		for mode in "${MODES[@]}"; do
			id="$proto-$mode"
			line=${LINE[$id]:-}
			if [[ -z "$line" ]]; then
				echo "| $label | $mode | not measured (see the log) | | | | | | | | | | |"
				continue
			fi
			r=$(field rounds "$line")
			cpu=$(cpu_us_per_req "${TICKS[$id]}" "$((r + WARMUP_ROUNDS))")
			awk -v l="$label" -v m="$mode" -v r="$r" -v mean="$(field mean_ms "$line")" -v p50="$(field p50_ms "$line")" \
				-v p90="$(field p90_ms "$line")" -v p99="$(field p99_ms "$line")" -v mx="$(field max_ms "$line")" \
				-v s="$seq_p50" -v c="$cpu" -v o="${ORIGIN_PER_ROUND[$id]}" -v e="$(field errors "$line")" -v ot="${OTHER[$id]}" 'BEGIN {
				q = (s + 0 > 0) ? sprintf("%.2f", p50 / s) : ""
				printf "| %s | %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %s | %.0f | %s | %d | %d |\n", l, m, r, mean, p50, p90, p99, mx, q, c, o, e, ot }'
		done
	done
	echo
	echo "gateway CPU µs/round is the gateway's CPU over the whole row, warm-up"
	echo "rounds included, divided by all its rounds (CPU ticks are $(getconf CLK_TCK)/s, so"
	echo "short rows are coarse)."
	echo "other load % is the CPU, in % of one core, that processes outside the"
	echo "bench used during the row; rows above $OTHER_MAX% were repeated up to $RETRIES times."
} >"$SECTION"

publish_section "$SECTION" "some rows were not measured; see the log"
