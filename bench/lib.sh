# shellcheck shell=bash
# The globals set here (PIN_*, TMP, LOAD_TIMEOUT, M_*, ...) are read by the
# scripts that source this file.
# shellcheck disable=SC2034
# Shared shell functions of the bench scripts (run.sh, cache.sh, compress.sh,
# websocket.sh, batch.sh, observability.sh). Source it
# after `set -euo pipefail` and BENCH_DIR/REPO_DIR are set, then call, in
# this order:
#
#   bench_knobs        DURATION RUNS WARMUP OTHER_MAX RETRIES QUIET_WAIT (QUICK=1)
#   bench_tools        installs missing tools, puts go on PATH, sets NGINX_BIN
#   bench_pinning      NPROC PIN_LOAD PIN_PROXY PIN_NOTE CLK_TCK
#   bench_tmp          TMP, PIDS, PARENTS, EXTRA_RM and the exit trap
#
# (scripts that need only go/wrk/curl skip bench_tools). Shared setup and
# report helpers, used after bench_tmp:
#
#   one_line FILE            first non-empty line of FILE, fit for a table cell
#   build_gateway CONFIG WHAT  builds $TMP/gateway, validates CONFIG; prints why not
#   start_gw CONFIG ADMIN [PORT]  starts the gateway as GW, waits until it answers
#   nginx_conf_head          start of an nginx.conf (1 worker, temp dirs, upstream origin)
#   start_nginx URL...       starts $TMP/nginx/nginx.conf as NGINX, waits for the URLs
#   env_lines                report lines: go version, CPU and kernel, load average
#   note_medians, note_other_load  report footnote sentences
#   publish_section SECTION MSG  reassembles RESULTS.md; exits 2 with MSG if MISSING
#
# Every server goes through `start` (its PID lands in PIDS); a server whose
# children do the work (nginx master, varnishd manager) is also added to
# PARENTS, so that its children are charged to it, counted as the bench's
# own load and stopped on exit.

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

# seconds converts a wrk/h2load duration (10, 10s, 500ms, 2m, 1h) to whole
# seconds, rounded up, for the safety timeouts around the load generators.
seconds() {
	local d=$1
	case "$d" in
	*ms) echo $(((${d%ms} + 999) / 1000)) ;;
	*s) echo "${d%s}" ;;
	*m) echo $((${d%m} * 60)) ;;
	*h) echo $((${d%h} * 3600)) ;;
	*) echo "$d" ;;
	esac
}

# bench_knobs reads the knobs every bench script shares and checks them.
bench_knobs() {
	if [[ "${QUICK:-0}" == "1" ]]; then
		DURATION="${DURATION:-2s}"
		RUNS="${RUNS:-1}"
	fi
	DURATION="${DURATION:-10s}"
	RUNS="${RUNS:-3}"
	WARMUP="${WARMUP:-2s}"
	OTHER_MAX="${OTHER_MAX:-15}"
	RETRIES="${RETRIES:-2}"
	QUIET_WAIT="${QUIET_WAIT:-300}"
	[[ "$(seconds "$DURATION")" =~ ^[0-9]+$ ]] || die "DURATION=$DURATION: use e.g. 10s, 500ms, 1m"
	[[ "$(seconds "$WARMUP")" =~ ^[0-9]+$ ]] || die "WARMUP=$WARMUP: use e.g. 2s, 500ms"
	[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "RUNS=$RUNS: must be a positive integer"
	[[ "$OTHER_MAX" =~ ^[0-9]+$ ]] || die "OTHER_MAX=$OTHER_MAX: must be a whole percentage"
	[[ "$RETRIES" =~ ^[0-9]+$ ]] || die "RETRIES=$RETRIES: must be a whole number"
	[[ "$QUIET_WAIT" =~ ^[0-9]+$ ]] || die "QUIET_WAIT=$QUIET_WAIT: must be seconds"
	LOAD_TIMEOUT=$(($(seconds "$DURATION") + $(seconds "$WARMUP") + 60))
}

# bench_tools installs what is missing (nginx, varnish, wrk, h2load, curl)
# from Debian packages, as root or through sudo, and finds go.
bench_tools() {
	[[ -x /usr/local/go/bin/go ]] && PATH="/usr/local/go/bin:$PATH"
	command -v go >/dev/null || die "go not found (expected /usr/local/go/bin/go)"

	local need_pkgs=() sudo=""
	command -v nginx >/dev/null || need_pkgs+=(nginx)
	command -v varnishd >/dev/null || need_pkgs+=(varnish)
	command -v wrk >/dev/null || need_pkgs+=(wrk)
	command -v h2load >/dev/null || need_pkgs+=(nghttp2-client)
	command -v curl >/dev/null || need_pkgs+=(curl)
	if ((${#need_pkgs[@]})); then
		if [[ $(id -u) -ne 0 ]]; then
			command -v sudo >/dev/null || die "missing ${need_pkgs[*]} and not root: install nginx varnish wrk nghttp2-client"
			sudo=sudo
		fi
		log "installing nginx varnish wrk nghttp2-client (missing: ${need_pkgs[*]})"
		$sudo apt-get update -qq
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nginx varnish wrk nghttp2-client curl >/dev/null
	fi
	# nginx/varnish come from Debian packages that may start their system
	# services; the bench never uses those and runs its own instances instead.
	NGINX_BIN="$(command -v nginx)"
	VARNISHD_BIN="$(command -v varnishd || true)"
	[[ -n "$VARNISHD_BIN" ]] || VARNISHD_BIN=/usr/sbin/varnishd
}

# bench_pinning decides the cores: the server under test on PROXY_CPU, the
# load generator and the origin behind the proxies on LOAD_CPU.
bench_pinning() {
	NPROC=$(nproc)
	LOAD_CPU="${LOAD_CPU:-0}"
	PROXY_CPU="${PROXY_CPU:-1}"
	if ((NPROC >= 2)); then
		PIN_LOAD=(taskset -c "$LOAD_CPU")
		PIN_PROXY=(taskset -c "$PROXY_CPU")
		PIN_NOTE="server under test on CPU $PROXY_CPU; load generator and origin on CPU $LOAD_CPU"
	else
		PIN_LOAD=()
		PIN_PROXY=()
		PIN_NOTE="not pinned (1 CPU): load generator, origin and server under test share the core"
	fi
	CLK_TCK=$(getconf CLK_TCK)
}

# bench_tmp makes the temp dir and installs the exit trap that stops every
# process the script started (by PID) and removes TMP and EXTRA_RM.
bench_tmp() {
	TMP="$(mktemp -d /tmp/gwbench.XXXXXX)"
	# nginx workers run as an unprivileged user and must reach their temp dirs.
	chmod 755 "$TMP"
	PIDS=()
	PARENTS=()
	EXTRA_RM=()
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	local kids=() p
	# Children (nginx workers, the Varnish cache process) are listed before
	# their parent goes, so none is left behind if it has to be killed hard.
	# Only the parents get TERM: nginx's master and varnishd's manager stop
	# their children themselves, and a manager seeing its child die would
	# start a new one.
	for p in "${PARENTS[@]}"; do
		# shellcheck disable=SC2207
		kids+=($(child_pids "$p"))
	done
	local procs=("${PIDS[@]}" "${kids[@]}")
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for _ in $(seq 1 50); do
		local alive=0
		for p in "${procs[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		((alive)) || break
		sleep 0.1
	done
	for p in "${procs[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	if [[ "${KEEP_TMP:-0}" == "1" ]]; then
		log "kept $TMP ${EXTRA_RM[*]}"
	else
		rm -rf "$TMP" "${EXTRA_RM[@]}"
	fi
	exit "$rc"
}

child_pids() {
	local f
	for f in /proc/"$1"/task/*/children; do
		[[ -r "$f" ]] && cat "$f"
	done 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+$' || pgrep -P "$1" || true
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start NAME LOGFILE CMD... launches a server in the background and records
# its PID in PIDS and PID_NAME (taskset execs, so $! is the server itself).
start() {
	local name=$1 logf=$2
	shift 2
	"$@" >"$logf" 2>&1 &
	local pid=$!
	PIDS+=("$pid")
	eval "PID_$name=$pid"
}

# wait_http NAME PID LOGFILE URL [curl args...] polls until URL answers 2xx.
wait_http() {
	local name=$1 pid=$2 logf=$3 url=$4
	shift 4
	for _ in $(seq 1 100); do
		if ! kill -0 "$pid" 2>/dev/null; then
			log "$name exited before becoming ready; last lines of $logf:"
			tail -n 30 "$logf" >&2 || true
			return 1
		fi
		if curl -fsS -o /dev/null --max-time 1 "$@" "$url" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	log "$name did not answer $url within 10s; last lines of $logf:"
	tail -n 30 "$logf" >&2 || true
	return 1
}

# check_pinned NAME CPU PID... warns when a thread of the PIDs may run on
# another core than CPU (children and threads inherit taskset's affinity,
# so this only catches a process that changed its own).
check_pinned() {
	local name=$1 cpu=$2 p t bad=0 list
	shift 2
	((NPROC >= 2)) || return 0
	for p in "$@"; do
		for t in /proc/"$p"/task/*; do
			list=$(taskset -pc "${t##*/}" 2>/dev/null | awk -F': ' '{print $2}') || continue
			[[ -z "$list" || "$list" == "$cpu" ]] || bad=$((bad + 1))
		done
	done
	if ((bad)); then
		log "WARNING: $bad thread(s) of $name are not pinned to CPU $cpu"
	fi
}

# ---------------------------------------------------------------- CPU accounting
# cpu_ticks PID... prints utime+stime (clock ticks) summed over the PIDs.
# Fields 14 and 15 of /proc/PID/stat (all threads of the process); the
# command name (field 2) may hold spaces, so fields are counted after its
# closing parenthesis.
cpu_ticks() {
	local total=0 p s rest fields
	for p in "$@"; do
		s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		rest=${s##*) }
		read -r -a fields <<<"$rest"
		total=$((total + fields[11] + fields[12]))
	done
	echo "$total"
}

# machine_busy prints the busy ticks of all CPUs together (user, nice,
# system, irq, softirq, steal from /proc/stat; the same USER_HZ as CLK_TCK).
machine_busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }

# our_ticks prints the CPU used so far by everything this script started:
# the servers still running and their children, plus this shell and every
# child it has waited for (load generators, curl, awk), which /proc/$$/stat
# fields 14-17 hold.
our_ticks() {
	local s rest fields p kids=()
	s=$(cat "/proc/$$/stat")
	rest=${s##*) }
	read -r -a fields <<<"$rest"
	for p in "${PARENTS[@]}"; do
		# shellcheck disable=SC2207
		kids+=($(child_pids "$p"))
	done
	echo $((fields[11] + fields[12] + fields[13] + fields[14] + $(cpu_ticks "${PIDS[@]}" "${kids[@]}")))
}

# other_load SECONDS prints the CPU, in % of one core, that processes this
# script did not start used over the next SECONDS.
other_load() {
	local b0 o0 b1 o1
	b0=$(machine_busy)
	o0=$(our_ticks)
	sleep "$1"
	b1=$(machine_busy)
	o1=$(our_ticks)
	awk -v b=$((b1 - b0)) -v o=$((o1 - o0)) -v s="$1" -v t="$CLK_TCK" \
		'BEGIN { v = (b - o) / (s * t) * 100; if (v < 0) v = 0; printf "%.0f", v }'
}

# wait_quiet waits, at most QUIET_WAIT seconds, for other work on the
# machine (a test suite, a build) to end before measuring, since it skews
# every number. Sets LOADAVG_START and MEASURE_START.
wait_quiet() {
	local waited=0 other
	while :; do
		other=$(other_load 5)
		((other > OTHER_MAX)) || break
		if ((waited >= QUIET_WAIT)); then
			log "WARNING: other processes still use ${other}% of a core after ${QUIET_WAIT}s; measuring anyway"
			break
		fi
		log "other processes use ${other}% of a core; waiting for a quiet machine (${waited}/${QUIET_WAIT}s)"
		sleep 10
		waited=$((waited + 15))
	done
	LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
	MEASURE_START=$(date -u "+%Y-%m-%d %H:%M:%S UTC")
}

# measure OUT "PIDS" WARM CMD... runs WARM (a command or shell function, ':'
# for none; unmeasured), then CMD with stdout and stderr to OUT, and samples
# around CMD only. It sets M_TICKS (CPU ticks the PIDS used during CMD),
# M_OTHER (CPU, in % of one core, of processes the script did not start)
# and M_RC (CMD's exit status). A run during which M_OTHER exceeded
# OTHER_MAX is repeated, warmup included, up to RETRIES times 15 s apart;
# the last one is kept. CMD may be a shell function (it then runs in this
# shell, so it can keep state between calls); it must bound its own time.
measure() {
	local out=$1 pids=$2 warm=$3
	shift 3
	local try before after busy0 busy1 ours0 ours1 t0 t1
	for try in $(seq 0 "$RETRIES"); do
		"$warm"
		# shellcheck disable=SC2086
		before=$(cpu_ticks $pids)
		busy0=$(machine_busy)
		ours0=$(our_ticks)
		t0=$(date +%s%N)
		M_RC=0
		"$@" >"$out" 2>&1 || M_RC=$?
		t1=$(date +%s%N)
		busy1=$(machine_busy)
		ours1=$(our_ticks)
		# shellcheck disable=SC2086
		after=$(cpu_ticks $pids)
		M_TICKS=$((after - before))
		# CPU used by processes this script did not start, in % of one
		# core: a test suite running next to the bench takes cycles from
		# the pinned cores and makes the run meaningless.
		M_OTHER=$(awk -v b=$((busy1 - busy0)) -v o=$((ours1 - ours0)) -v ns=$((t1 - t0)) -v t="$CLK_TCK" \
			'BEGIN { v = (b - o) / (ns / 1e9 * t) * 100; if (v < 0) v = 0; printf "%.0f", v }')
		if ((M_OTHER <= OTHER_MAX)); then
			break
		fi
		if ((try < RETRIES)); then
			log "  other processes used ${M_OTHER}% of a core during the run; waiting 15s and repeating it"
			sleep 15
		else
			log "  other processes used ${M_OTHER}% of a core during the run; keeping it (RETRIES=$RETRIES exhausted)"
		fi
	done
}

# cpu_us_per_req TICKS REQUESTS prints CPU µs per request.
cpu_us_per_req() {
	awk -v d="$1" -v t="$CLK_TCK" -v n="$2" 'BEGIN { if (n > 0) printf "%.2f", d / t * 1e6 / n; else print "nan" }'
}

# ---------------------------------------------------------------- load output
# to_us VALUE_WITH_UNIT converts wrk's latency (e.g. 412.00us, 1.20ms, 2.01s) to µs.
to_us() {
	awk -v v="$1" 'BEGIN {
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "us") m = 1; else if (u == "ms") m = 1000; else if (u == "s") m = 1000000;
		else if (u == "m") m = 60000000; else m = 1
		printf "%.1f", n * m }'
}

# parse_wrk OUT prints: rps requests p50_us p99_us errors
parse_wrk() {
	local out=$1 rps reqs p50 p99 errs
	rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
	reqs=$(awk '/ requests in / {print $1}' "$out")
	p50=$(awk '$1 == "50%" {print $2}' "$out")
	p99=$(awk '$1 == "99%" {print $2}' "$out")
	errs=$(awk '
		/Non-2xx or 3xx responses:/ {e += $NF}
		/Socket errors:/ {gsub(/,/, ""); e += $4 + $6 + $8 + $10}
		END {print e + 0}' "$out")
	[[ -n "$rps" && -n "$reqs" && -n "$p50" && -n "$p99" ]] || return 1
	echo "$rps $reqs $(to_us "$p50") $(to_us "$p99") $errs"
}

# ---------------------------------------------------------------- report
# median COLUMN FILE: median of one column over the runs.
median() {
	awk -v c="$1" '{print $c}' "$2" | sort -g | awk '
		{v[NR] = $1}
		END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# used_samples ALL USED COLUMN keeps the runs whose other load (COLUMN) is
# at most OTHER_MAX; when none is, all of them.
used_samples() {
	awk -v m="$OTHER_MAX" -v c="$3" '$c <= m' "$1" >"$2"
	[[ -s "$2" ]] || cp "$1" "$2"
}

# max_col COLUMN FILE: the largest value of a column.
max_col() { awk -v c="$1" '$c > m { m = $c } END { print m + 0 }' "$2"; }

# wrk_row ROW LABEL ALL USED REF WHY prints one table row of a wrk
# comparison: ALL holds a line per run ("req/s p50µs p99µs CPUµs/req
# errors other%"), of which the undisturbed ones go to USED (used_samples);
# ratios are to REF, the reference row's USED file. Without samples it
# prints WHY in the row and returns 1.
wrk_row() {
	local row=$1 label=$2 all=$3 f=$4 ref=$5 why=$6 rr="" rc=""
	if [[ ! -s "$all" ]]; then
		echo "| $row | $label | $why | | | | | | | | |"
		return 1
	fi
	used_samples "$all" "$f" 6
	if [[ -s "$ref" ]]; then
		rr=$(median 1 "$ref")
		rc=$(median 4 "$ref")
	fi
	awk -v w="$row" -v l="$label" -v r="$(median 1 "$f")" -v a="$(median 2 "$f")" \
		-v b="$(median 3 "$f")" -v c="$(median 4 "$f")" -v e="$(median 5 "$f")" -v o="$(max_col 6 "$f")" \
		-v rr="$rr" -v rc="$rc" -v u="$(wc -l <"$f")/$(wc -l <"$all")" 'BEGIN {
		qr = (rr + 0 > 0) ? sprintf("%.2f", r / rr) : "–"
		qc = (rc + 0 > 0) ? sprintf("%.2f", c / rc) : "–"
		printf "| %s | %s | %.0f | %.3f | %.3f | %.1f | %s | %s | %d | %d | %s |\n", w, l, r, a / 1000, b / 1000, c, qr, qc, e, o, u }'
}

# ---------------------------------------------------------------- setup helpers
# one_line FILE: the first non-empty line of FILE, fit for a table cell.
one_line() { grep -m1 -v '^[[:space:]]*$' "$1" 2>/dev/null | sed "s#$TMP/##g" | tr '|' '/' | cut -c1-160 || true; }

# build_gateway CONFIG WHAT builds the gateway into $TMP/gateway and has it
# validate CONFIG. When either fails it logs the output and prints the
# reason for the gateway's rows (WHAT names the config, e.g. "config");
# it prints nothing when the gateway can be measured.
build_gateway() {
	log "building gateway"
	if ! (cd "$REPO_DIR" && go build -o "$TMP/gateway" .) >"$TMP/gateway-build.log" 2>&1; then
		log "gateway build failed; its rows will be marked not measured. Build output:"
		tail -n 30 "$TMP/gateway-build.log" >&2 || true
		echo "not measured: gateway did not build ($(one_line "$TMP/gateway-build.log"))"
	elif ! "$TMP/gateway" validate -config "$1" >"$TMP/gateway-validate.log" 2>&1; then
		cat "$TMP/gateway-validate.log" >&2 || true
		echo "not measured: gateway rejected the $2 ($(one_line "$TMP/gateway-validate.log"))"
	fi
}

# start_gw CONFIG ADMIN_PORT [PORT] starts $TMP/gateway with CONFIG as GW
# (pinned to the server core, log $TMP/gateway.log) and waits for its
# admin /readyz and, with PORT, for its listener. Returns non-zero when
# it does not come up.
start_gw() {
	start GW "$TMP/gateway.log" "${PIN_PROXY[@]}" "$TMP/gateway" run -config "$1"
	wait_http "gateway admin" "$PID_GW" "$TMP/gateway.log" "http://127.0.0.1:$2/readyz" || return 1
	[[ -z "${3:-}" ]] || wait_http gateway "$PID_GW" "$TMP/gateway.log" "http://127.0.0.1:$3/"
}

# nginx_conf_head prints the start of an nginx.conf, up to inside
# "http {": one worker in the foreground,
# pid, error log and temp dirs under $TMP/nginx, no access log, client
# keep-alive for a whole load run and the upstream "origin" (P_ORIGIN,
# kept-alive connections). The caller adds its server blocks and the
# closing brace.
nginx_conf_head() {
	cat <<EOF
# One worker, like the single core the other proxies get.
worker_processes 1;
daemon off;
master_process on;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/client_body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    # Load generators reuse their connections for the whole run; nginx's
    # default of 1000 requests per connection would add reconnects that
    # no other target pays for.
    keepalive_requests 10000000;
    keepalive_timeout 75s;
    upstream origin {
        server 127.0.0.1:$P_ORIGIN;
        keepalive 256;
        keepalive_requests 10000000;
    }
EOF
}

# start_nginx URL... starts nginx with $TMP/nginx/nginx.conf as NGINX on the
# server core (a parent: its worker is charged to it) and waits for each
# URL; dies when it does not come up.
start_nginx() {
	local url
	start NGINX "$TMP/nginx/stdout.log" "${PIN_PROXY[@]}" "$NGINX_BIN" -p "$TMP/nginx/" -c "$TMP/nginx/nginx.conf"
	PARENTS+=("$PID_NGINX")
	for url in "$@"; do
		wait_http nginx "$PID_NGINX" "$TMP/nginx/logs/error.log" "$url" || {
			tail -n 20 "$TMP/nginx/stdout.log" >&2 || true
			die "nginx did not start"
		}
	done
}

# ---------------------------------------------------------------- report helpers
# env_lines prints the last lines of a section's environment list: the Go
# version, CPU model and kernel, and the load average before measuring.
env_lines() {
	echo "- $(go version)"
	echo "- CPU: $(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo); kernel $(uname -sr), nproc $NPROC"
	echo "- load average (1/5/15 min) before measuring: $LOADAVG_START"
}

# note_medians prints the footnote sentence on medians and disturbed runs.
note_medians() {
	echo "Every number is the median over the runs counted in \"runs\" (used/measured:"
	echo "runs that other processes disturbed are left out when the row has"
	echo "undisturbed ones)."
}

# note_other_load prints the footnote sentence on the "other load %" column.
note_other_load() {
	echo "other load % is the most CPU, in % of one core, that processes outside the"
	echo "bench used during any used run; runs above $OTHER_MAX% were repeated up to"
	echo "$RETRIES times."
}

# publish_section SECTION MESSAGE reassembles bench/RESULTS.md and shows
# SECTION; when MISSING is 1 it logs MESSAGE and exits 2.
publish_section() {
	bash "$BENCH_DIR/assemble.sh"
	log "wrote $1 and $BENCH_DIR/RESULTS.md"
	cat "$1"
	if ((MISSING)); then
		log "$2"
		exit 2
	fi
}
