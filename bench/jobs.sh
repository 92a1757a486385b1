#!/usr/bin/env bash
# Async routes benchmark (package jobs), on loopback:
#   a. the 202 path against a plain pass-through of the same request: the
#      same POST (1 KiB body) to an async route (mode always) and to a
#      route without async, both to the same origin path (answered at
#      once); req/s, p50/p99, and the gateway's CPU µs per request. The
#      async row once with the bbolt store (the 202 waits for the job's
#      fsync) and once with the Redis store (cache.shared). CPU is given
#      twice for async rows: during the submit window (the route's
#      workers run jobs meanwhile) and to completion (every accepted job
#      run and its result stored), per job. The disk's fdatasync latency
#      is measured beside it (bench/jobsbench fsync, in the store's dir).
#   b. jobs completed per second: N_JOBS jobs submitted at once to an
#      async route whose upstream takes JOB_MS ms (origin
#      /slow?ms=JOB_MS&nostore=1), route concurrency JOB_CONC; from the
#      first submit until /jobs/stats (admin) counts all of them ended.
#      Against the ceiling JOB_CONC / JOB_MS (16 / 50 ms = 320/s).
#
# Both gateways (bolt store, Redis store) run at once, on the server core;
# each is measured with its own PID. Before every measured run the
# gateway's queue is waited empty (jobsbench idle), so the jobs of a
# previous row do not run inside the next.
#
# Usage: bash bench/jobs.sh
# Knobs (environment):
#   RUNS=3            runs per row; the median is reported
#   QUICK=1           smoke run: RUNS=1 and fewer requests
#   CONNS=16          client connections
#   N_PASS=20000 N_ACCEPT=5000  requests per run of the pass-through and 202 rows
#   N_JOBS=2000 JOB_MS=50 JOB_CONC=16  the jobs/s rows
#   PORT_BASE=31000   first of the loopback ports used (+0..+50)
#   LOAD_CPU=0 PROXY_CPU=1 KEEP_TMP=1 OTHER_MAX RETRIES QUIET_WAIT  as in run.sh
#
# Writes bench/results/90-jobs.md and reassembles bench/RESULTS.md.
# Exits 2 when something could not be measured, 1 on a harness error.

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
	N_PASS="${N_PASS:-5000}"
	N_ACCEPT="${N_ACCEPT:-1000}"
	N_JOBS="${N_JOBS:-500}"
fi
N_PASS="${N_PASS:-20000}"
N_ACCEPT="${N_ACCEPT:-5000}"
N_JOBS="${N_JOBS:-2000}"
JOB_MS="${JOB_MS:-50}"
JOB_CONC="${JOB_CONC:-16}"
for v in CONNS N_PASS N_ACCEPT N_JOBS JOB_MS JOB_CONC; do
	[[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v=${!v}: must be a positive integer"
done
PORT_BASE="${PORT_BASE:-31000}"
BODY=1024

P_ORIGIN=$PORT_BASE
P_REDIS=$((PORT_BASE + 50))
declare -A PORT=([bolt]=$((PORT_BASE + 1)) [redis]=$((PORT_BASE + 2)))
declare -A ADMIN=([bolt]=$((PORT_BASE + 11)) [redis]=$((PORT_BASE + 12)))
base() { echo "http://127.0.0.1:${PORT[$1]}"; }
stats_url() { echo "http://127.0.0.1:${ADMIN[$1]}/jobs/stats"; }

# ---------------------------------------------------------------- tools
[[ -x /usr/local/go/bin/go ]] && PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null || die "go not found (expected /usr/local/go/bin/go)"
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v curl >/dev/null || need+=(curl)
if ((${#need[@]})); then
	sudo=""
	[[ $(id -u) -eq 0 ]] || sudo=sudo
	log "installing ${need[*]}"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
REDIS_BIN="$(command -v redis-server)"
bench_pinning
bench_tmp
for p in $P_ORIGIN $P_REDIS "${PORT[@]}" "${ADMIN[@]}"; do
	port_free "$p" || die "port 127.0.0.1:$p is in use; set PORT_BASE to another range"
done

log "building origin and jobsbench"
(cd "$REPO_DIR" && go build -o "$TMP/origin" ./bench/origin && go build -o "$TMP/jobsbench" ./bench/jobsbench) ||
	die "building bench/origin or bench/jobsbench failed"
JB="$TMP/jobsbench"

# gw_conf STORE writes $TMP/STORE.yaml: route /pass (no async), route
# /accept (async always, to the same origin path), route /work (async
# always, concurrency JOB_CONC, for the jobs/s rows); the jobs in the
# bbolt file under $TMP/STORE-data, or in Redis (cache.shared).
gw_conf() {
	{
		cat <<EOF
shutdown_grace: 5s
log:
  level: warn
access_log:
  enabled: false
EOF
		if [[ $1 == redis ]]; then
			cat <<EOF
cache:
  shared:
    addresses: ["redis://127.0.0.1:$P_REDIS"]
EOF
		fi
		cat <<EOF
jobs:
  store: $1
  data_dir: $TMP/$1-data
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
  - name: accept
    path: /accept
    strip_prefix: true
    upstream: origin
    async:
      mode: always
      queue_depth: 1000000
  - name: work
    path: /work
    strip_prefix: true
    upstream: origin
    async:
      mode: always
      concurrency: $JOB_CONC
      queue_depth: 1000000
EOF
	} >"$TMP/$1.yaml"
}
gw_conf bolt
gw_conf redis

MISSING=0
declare -A WHY
WHY[bolt]=$(build_gateway "$TMP/bolt.yaml" "config")
WHY[redis]=${WHY[bolt]}
if [[ -z "${WHY[redis]}" ]] && ! "$TMP/gateway" validate -config "$TMP/redis.yaml" >"$TMP/redis-validate.log" 2>&1; then
	WHY[redis]="not measured: gateway rejected the Redis store config ($(one_line "$TMP/redis-validate.log"))"
fi

# ---------------------------------------------------------------- servers
start ORIGIN "$TMP/origin.log" "${PIN_LOAD[@]}" "$TMP/origin" -addr "127.0.0.1:$P_ORIGIN"
wait_http origin "$PID_ORIGIN" "$TMP/origin.log" "http://127.0.0.1:$P_ORIGIN/" || die "origin did not start"

# Redis as shared.sh starts it: no persistence (the Redis store's
# durability is Redis's own: here a Redis crash would lose the jobs).
start REDIS "$TMP/redis.log" "${PIN_LOAD[@]}" "$REDIS_BIN" --bind 127.0.0.1 --port "$P_REDIS" \
	--save "" --appendonly no --maxmemory 1gb --maxmemory-policy noeviction --dir "$TMP" --protected-mode yes
for _ in $(seq 1 50); do
	redis_ping=$( (exec 3<>"/dev/tcp/127.0.0.1/$P_REDIS" && printf 'PING\r\n' >&3 && timeout 1 head -c 7 <&3) 2>/dev/null || true)
	[[ "$redis_ping" == "+PONG"* ]] && break
	sleep 0.1
done
[[ "${redis_ping:-}" == "+PONG"* ]] || { tail -n 20 "$TMP/redis.log" >&2; die "redis-server did not start"; }

declare -A GWPID
for s in bolt redis; do
	[[ -z "${WHY[$s]}" ]] || continue
	start "GW_${s^^}" "$TMP/gw-$s.log" "${PIN_PROXY[@]}" "$TMP/gateway" run -config "$TMP/$s.yaml"
	pidvar="PID_GW_${s^^}"
	GWPID[$s]=${!pidvar}
	if ! wait_http "gateway $s" "${GWPID[$s]}" "$TMP/gw-$s.log" "http://127.0.0.1:${ADMIN[$s]}/readyz" ||
		! wait_http "gateway $s" "${GWPID[$s]}" "$TMP/gw-$s.log" "$(base "$s")/pass/"; then
		WHY[$s]="not measured: the $s gateway did not start ($(one_line "$TMP/gw-$s.log"))"
		continue
	fi
	# One job end to end: 202 with a Location, then 303 once done.
	loc=$(curl -sS -o /dev/null -D - -X POST --data-binary @/dev/null "$(base "$s")/accept/check" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
	st=""
	for _ in $(seq 1 50); do
		st=$(curl -sS -o /dev/null -w '%{http_code}' "$(base "$s")$loc" || true)
		[[ "$st" != 303 ]] || break
		sleep 0.1
	done
	if [[ "$loc" != /_jobs/* || "$st" != 303 ]]; then
		WHY[$s]="not measured: a job on the $s gateway did not end (Location '${loc}', status $st)"
	fi
done
for s in bolt redis; do [[ -z "${WHY[$s]}" ]] || log "${WHY[$s]}"; done

# field NAME FILE: the value of NAME= in the last line of FILE.
field() { tail -n1 "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
# idle STORE waits until the gateway's queue is empty (bounded).
idle() { timeout 200 "$JB" idle -stats "$(stats_url "$1")" -timeout 180s >/dev/null || log "  the $1 queue did not empty"; }
jb() { timeout 300 "${PIN_LOAD[@]}" "$JB" "$@"; }

mkdir -p "$TMP/out"
O="$TMP/out"

# fdatasync of a 4 KiB block on the store's disk: what each bbolt commit
# waits for (twice: its pages, then its meta page).
FSYNC=""
if [[ -z "${WHY[bolt]}" ]]; then
	FSYNC=$("$JB" fsync -dir "$TMP/bolt-data" -n 1000 || true)
	log "fdatasync: $FSYNC"
fi

# warmup: connections, the stores' files and streams.
for s in bolt redis; do
	[[ -z "${WHY[$s]}" ]] || continue
	jb post -url "$(base "$s")/pass/echo" -n 2000 -c "$CONNS" -body $BODY -want 200 >/dev/null 2>&1 || true
	jb post -url "$(base "$s")/accept/echo" -n 300 -c "$CONNS" -body $BODY -want 202 >/dev/null 2>&1 || true
	idle "$s"
done
wait_quiet

# ---------------------------------------------------------------- a. 202 vs pass-through
# rows: pass (bolt gateway, route without async), bolt (202, bolt store),
# redis (202, Redis store).
declare -A ROW_GW=([pass]=bolt [bolt]=bolt [redis]=redis)
declare -A ROW_LABEL=([pass]="pass-through (no async), 200" [bolt]="202, bolt store" [redis]="202, Redis store")
for run in $(seq 1 "$RUNS"); do
	for row in pass bolt redis; do
		s=${ROW_GW[$row]}
		[[ -z "${WHY[$s]}" ]] || continue
		pid=${GWPID[$s]}
		log "run $run/$RUNS: $row"
		if [[ $row == pass ]]; then
			n=$N_PASS
			args=(-url "$(base "$s")/pass/echo" -want 200)
		else
			n=$N_ACCEPT
			args=(-url "$(base "$s")/accept/echo" -want 202)
		fi
		idle "$s"
		measure "$O/a-$row.$run" "$pid" : jb post "${args[@]}" -n "$n" -c "$CONNS" -body $BODY -max-time 120s
		line=$(tail -n1 "$O/a-$row.$run")
		log "  $line"
		[[ "$line" == n=* ]] || continue
		ok=$(field ok "$O/a-$row.$run")
		cpu=$(cpu_us_per_req "$M_TICKS" "$ok")
		e2e=$cpu
		if [[ $row != pass ]]; then
			# To completion: the rest of the accepted jobs run; CPU per job.
			t0=$(cpu_ticks "$pid")
			idle "$s"
			t1=$(cpu_ticks "$pid")
			e2e=$(cpu_us_per_req $((M_TICKS + t1 - t0)) "$ok")
		fi
		log "  cpu_us/req=$cpu to completion=$e2e other=$M_OTHER%"
		echo "$(field rps "$O/a-$row.$run") $(field p50_ms "$O/a-$row.$run") $(field p99_ms "$O/a-$row.$run") $cpu $e2e $(field errors "$O/a-$row.$run") $M_OTHER" >>"$O/a-$row.samples"
	done
done

# ---------------------------------------------------------------- b. jobs/s
for run in $(seq 1 "$RUNS"); do
	for s in bolt redis; do
		[[ -z "${WHY[$s]}" ]] || continue
		log "run $run/$RUNS: $N_JOBS jobs of $JOB_MS ms, $s store"
		idle "$s"
		measure "$O/b-$s.$run" "${GWPID[$s]}" : jb drain -url "$(base "$s")/work/slow?ms=$JOB_MS&nostore=1" \
			-n "$N_JOBS" -c "$CONNS" -body $BODY -stats "$(stats_url "$s")" -timeout 240s
		line=$(tail -n1 "$O/b-$s.$run")
		log "  $line other=$M_OTHER%"
		[[ "$line" == n=* ]] || continue
		f="$O/b-$s.$run"
		echo "$(field jobs_per_s "$f") $(field total_s "$f") $(field submit_s "$f") $(field run_mean_ms "$f") $(field wait_p50_ms "$f") $(cpu_us_per_req "$M_TICKS" "$(field accepted "$f")") $(field errors "$f") $(field failed "$f") $M_OTHER $(field last "$f")" >>"$O/b-$s.samples"
	done
done

# The cost of one /jobs/stats call now that the runs' jobs are stored
# (bolt counts them one by one): the fastest of 5, and the jobs ended.
declare -A STATS_MS STATS_JOBS
for s in bolt redis; do
	[[ -z "${WHY[$s]}" ]] || continue
	STATS_MS[$s]=$(for _ in 1 2 3 4 5; do curl -fsS -o /dev/null -w '%{time_total}\n' "$(stats_url "$s")" || true; done |
		sort -g | awk 'NR == 1 { printf "%.1f", $1 * 1000 }')
	STATS_JOBS[$s]=$(curl -fsS "$(stats_url "$s")" | tr -d ' \n' | grep -o '"succeeded":[0-9]*' | cut -d: -f2 || true)
	log "/jobs/stats on $s: ${STATS_MS[$s]} ms with ${STATS_JOBS[$s]} jobs succeeded"
done

# ---------------------------------------------------------------- report
med() { [[ -s "$2" ]] && median "$1" "$2" || echo ""; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b + 0 > 0) printf "%.2f", a / b; else print "–" }'; }
CEIL=$(awk -v c="$JOB_CONC" -v m="$JOB_MS" 'BEGIN { printf "%.0f", c * 1000 / m }')
SECTION="$BENCH_DIR/results/90-jobs.md"
mkdir -p "$BENCH_DIR/results"
for f in "$O"/a-*.samples "$O"/b-*.samples; do
	[[ -e "$f" ]] || continue
	col=7
	[[ $f != */b-* ]] || col=9
	used_samples "$f" "${f%.samples}.used" "$col"
done
{
	echo "## Async routes (job queue)"
	echo
	echo "Measured $MEASURE_START to $(date -u "+%H:%M:%S UTC") by \`bench/jobs.sh\`: $RUNS run(s) per row,"
	echo "$CONNS connections, $BODY-byte POST bodies; $N_PASS pass-through and $N_ACCEPT async requests per run;"
	echo "$N_JOBS jobs of $JOB_MS ms per jobs/s run. Pinning: $PIN_NOTE (Redis with the origin and the client)."
	echo
	echo "- $("$REDIS_BIN" --version | head -n1): \`--save \"\" --appendonly no\` (the Redis store's jobs are in memory only)"
	echo "- bolt store: \`jobs.data_dir\` on $(df -T "$TMP" | awk 'NR == 2 { print $2 " (" $1 ")" }')"
	if [[ -n "$FSYNC" ]]; then
		echo "- fdatasync of a 4 KiB block there (1000 times): p50 $(echo "$FSYNC" | tr ' ' '\n' | sed -n 's/^p50_us=//p') µs, mean $(echo "$FSYNC" | tr ' ' '\n' | sed -n 's/^mean_us=//p') µs, p99 $(echo "$FSYNC" | tr ' ' '\n' | sed -n 's/^p99_us=//p') µs"
	fi
	env_lines
	echo
	echo "### The 202 path against a pass-through of the same request"
	echo
	echo "POST /accept/echo (async always, default concurrency 4) and POST /pass/echo (no async),"
	echo "both to the origin's /echo (answered at once, 1 KiB). CPU µs/req: the gateway's"
	echo "CPU during the requests, over the answers; the route's workers run jobs"
	echo "meanwhile. To completion: until every accepted job has run and its result is"
	echo "stored, per job (202 + attempt + result)."
	echo
	echo "| row | req/s | p50 ms | p99 ms | CPU µs/req | CPU µs/job to completion | req/s ÷ pass | CPU ÷ pass (to completion) | errors | runs | other load % |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	P="$O/a-pass.used"
	for row in pass bolt redis; do
		f="$O/a-$row.used"
		if [[ ! -s "$f" ]]; then
			MISSING=1
			echo "| ${ROW_LABEL[$row]} | ${WHY[${ROW_GW[$row]}]:-not measured} | | | | | | | | | |"
			continue
		fi
		echo "| ${ROW_LABEL[$row]} | $(med 1 "$f") | $(med 2 "$f") | $(med 3 "$f") | $(med 4 "$f") | $(med 5 "$f") | $(ratio "$(med 1 "$f")" "$(med 1 "$P")") | $(ratio "$(med 5 "$f")" "$(med 4 "$P")") | $(med 6 "$f") | $(wc -l <"$f")/$(wc -l <"$O/a-$row.samples") | $(max_col 7 "$f") |"
	done
	echo
	echo "### Jobs completed per second ($N_JOBS jobs, upstream $JOB_MS ms, concurrency $JOB_CONC)"
	echo
	echo "From the first submit ($CONNS connections, all submitted at once) until the admin's"
	echo "\`/jobs/stats\` counts every one ended. Ceiling: concurrency ÷ latency = $CEIL jobs/s."
	echo "run mean: an attempt's mean time in the run (\`/jobs/stats\` run), wait p50: acceptance to first"
	echo "attempt, over the gateway process's life (earlier rows included). CPU µs/job: the gateway's, over the whole run."
	echo
	echo "| store | jobs/s | ÷ ceiling | total s | submit s | run mean ms | wait p50 ms | CPU µs/job | errors | failed | last job | runs | other load % |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |"
	for s in bolt redis; do
		f="$O/b-$s.used"
		if [[ ! -s "$f" ]]; then
			MISSING=1
			echo "| $s | ${WHY[$s]:-not measured} | | | | | | | | | | | |"
			continue
		fi
		echo "| $s | $(med 1 "$f") | $(ratio "$(med 1 "$f")" "$CEIL") | $(med 2 "$f") | $(med 3 "$f") | $(med 4 "$f") | $(med 5 "$f") | $(med 6 "$f") | $(med 7 "$f") | $(med 8 "$f") | $(awk '{print $10}' "$f" | sort -u | paste -sd, -) | $(wc -l <"$f")/$(wc -l <"$O/b-$s.samples") | $(max_col 9 "$f") |"
	done
	echo
	for s in bolt redis; do
		[[ -n "${STATS_MS[$s]:-}" ]] || continue
		echo "One \`/jobs/stats\` call after the runs, $s store (${STATS_JOBS[$s]} jobs succeeded and kept): ${STATS_MS[$s]} ms."
	done
	echo "The bench polls it every 50 ms: bolt counts the stored jobs one by one."
	echo
	note_medians
	note_other_load
	echo "Latencies are per request, from the client (bench/jobsbench), on loopback."
} >"$SECTION"

publish_section "$SECTION" "some rows were not measured; see the tables"
