#!/usr/bin/env bash
# Compression benchmark: cache hits for a 64 KiB compressible JSON document
# requested with Accept-Encoding: gzip, with br, and with none, through the
# gateway (stores each coding once), nginx (proxy_cache + gzip/brotli
# filters, which compress on every hit) and Varnish (stores gzip), all on
# loopback, 50 connections. Reports req/s, latency, server CPU per request
# and bytes per response.
#
# Usage: bash bench/compress.sh
# Knobs (environment):
#   DURATION=10s   length of each measured wrk run
#   RUNS=3         measured wrk runs per row; the median is reported
#   QUICK=1        smoke test: DURATION=2s RUNS=1
#   WARMUP=2s      unmeasured wrk run before every measured one
#   PORT_BASE=31000  first of the loopback ports used (see below)
#   LOAD_CPU=0 PROXY_CPU=1  cores for load generator+origin and server under test
#   KEEP_TMP=1     keep the temp dirs (configs, logs, raw output)
#   OTHER_MAX=15 RETRIES=2 QUIET_WAIT=300  interference handling, as in run.sh
#
# Writes bench/results/30-compress.md and reassembles bench/RESULTS.md.
# Exits 2 when some row could not be measured (its row says why), 1 on a
# harness error. nginx's br rows marked "not available" (no brotli module
# to be had) do not count as unmeasured.

# PID_NAME variables are set by start() (lib.sh) through eval.
# shellcheck disable=SC2153
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
bench_knobs
CONNS=50                 # fixed: the headings promise 50 connections
SIZE=65536               # fixed: the headings promise 64 KiB
PATH_DOC="/catalog/$SIZE"
PORT_BASE="${PORT_BASE:-31000}"
[[ "$PORT_BASE" =~ ^[0-9]+$ ]] || die "PORT_BASE=$PORT_BASE: must be a port number"

# Port plan, all on 127.0.0.1.
P_ORIGIN=$PORT_BASE                # origin that the proxies forward to (load core)
P_NGINX=$((PORT_BASE + 1))         # nginx, gzip/brotli at their default levels
P_GW=$((PORT_BASE + 2))            # gateway
P_VARNISH=$((PORT_BASE + 3))       # varnishd
P_NGINX_LVL=$((PORT_BASE + 4))     # the same nginx, levels of the gateway's stored objects
P_GW_ADMIN=$((PORT_BASE + 1092))

# Compression levels. nginx's defaults: gzip_comp_level 1, and the brotli
# filter module's brotli_comp_level 6. The gateway stores cached objects at
# its "default" level: gzip 6, brotli quality 5 (compress/encoders.go);
# the second nginx server block uses those, so its bytes match the
# gateway's and only the per-hit cost differs.
NGINX_GZIP_DEFAULT=1
NGINX_BR_DEFAULT=6
GW_GZIP_LEVEL=6
GW_BR_LEVEL=5

TARGETS=(nginx nginxlvl varnish gw)
declare -A BASE=(
	[nginx]="http://127.0.0.1:$P_NGINX"
	[nginxlvl]="http://127.0.0.1:$P_NGINX_LVL"
	[varnish]="http://127.0.0.1:$P_VARNISH"
	[gw]="http://127.0.0.1:$P_GW"
)
# WHY[target] is empty while the target can be measured, else the reason.
declare -A WHY=([nginx]="" [nginxlvl]="" [varnish]="" [gw]="")
ENCODINGS=(gzip br identity)

# ---------------------------------------------------------------- tools
bench_tools
bench_pinning
bench_tmp
VARNISH_VERSION=$("$VARNISHD_BIN" -V 2>&1 | head -n1)
VARNISH_SHORT="Varnish $(sed -n 's/.*varnish-\([0-9.]*\).*/\1/p' <<<"$VARNISH_VERSION")"
if [[ -d /dev/shm && -w /dev/shm ]]; then
	SHM="$(mktemp -d /dev/shm/gwbench-compress.XXXXXX)"
	chmod 755 "$SHM"
	EXTRA_RM+=("$SHM")
else
	SHM="$TMP"
fi

# nginx's brotli filter is a separate Debian package (not in nginx itself).
# Install it when missing; without it nginx's br rows say why.
BROTLI_PKG=libnginx-mod-http-brotli-filter
BROTLI_SO=/usr/lib/nginx/modules/ngx_http_brotli_filter_module.so
NGINX_BR_WHY=""
if [[ ! -f "$BROTLI_SO" ]]; then
	sudo=""
	[[ $(id -u) -eq 0 ]] || sudo=sudo
	if [[ -n "$sudo" ]] && ! command -v sudo >/dev/null; then
		NGINX_BR_WHY="not available: $BROTLI_SO missing, and not root to install $BROTLI_PKG"
	else
		log "installing $BROTLI_PKG (nginx brotli filter module)"
		if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$BROTLI_PKG" >"$TMP/apt-brotli.log" 2>&1; then
			$sudo apt-get update -qq >/dev/null 2>&1 || true
			DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$BROTLI_PKG" >"$TMP/apt-brotli.log" 2>&1 || true
		fi
		[[ -f "$BROTLI_SO" ]] ||
			NGINX_BR_WHY="not available: Debian package $BROTLI_PKG could not be installed ($(grep -m1 -E '^E:' "$TMP/apt-brotli.log" | tr '|' '/' || echo "see apt output"))"
	fi
	[[ -z "$NGINX_BR_WHY" ]] || log "nginx br rows: $NGINX_BR_WHY"
fi

for p in $P_ORIGIN $P_NGINX $P_NGINX_LVL $P_GW $P_VARNISH $P_GW_ADMIN; do
	port_free "$p" || die "port 127.0.0.1:$p is in use; set PORT_BASE to another range"
done

# ---------------------------------------------------------------- build
log "building origin"
(cd "$REPO_DIR" && go build -o "$TMP/origin" ./bench/origin) || die "building bench/origin failed"

# The gateway: the cache as in cache.sh, one route with cache and
# compression on (compress defaults: br, zstd, gzip; cached objects at the
# default level, streamed responses at the fastest).
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
    compress:
      enabled: true
EOF

WHY[gw]=$(build_gateway "$TMP/gateway.yaml" config)
[[ -z "${WHY[gw]}" ]] || log "${WHY[gw]}"

# ---------------------------------------------------------------- servers
start ORIGIN "$TMP/origin.log" "${PIN_LOAD[@]}" "$TMP/origin" -addr "127.0.0.1:$P_ORIGIN"
wait_http origin "$PID_ORIGIN" "$TMP/origin.log" "http://127.0.0.1:$P_ORIGIN$PATH_DOC" || die "origin did not start"
# The identity body every decoded response must equal.
curl -fsS --max-time 5 -o "$TMP/doc.json" "http://127.0.0.1:$P_ORIGIN$PATH_DOC" || die "origin did not answer $PATH_DOC"
[[ $(wc -c <"$TMP/doc.json") -eq $SIZE ]] || die "origin's $PATH_DOC is not $SIZE bytes"
DOC_GZIP6=$(gzip -6 -c "$TMP/doc.json" | wc -c)

# write_nginx_conf BROTLI(0/1) writes nginx.conf: cache.sh's proxy_cache
# setup plus gzip (and the brotli filter), one server block at nginx's
# default levels and one at the gateway's.
write_nginx_conf() {
	local br=$1 load="" br_http="" br_lvl=""
	if ((br)); then
		load="load_module $BROTLI_SO;"
		br_http="brotli on;
    brotli_types application/json;"
		br_lvl="brotli_comp_level $GW_BR_LEVEL;"
	fi
	{
		echo "$load"
		nginx_conf_head
		cat <<EOF
    # As in cache.sh: sendfile and tcp_nopush off (nginx's defaults).
    proxy_cache_path $SHM/nginx-cache levels=1:2 keys_zone=bench:10m max_size=256m use_temp_path=off;
    # The cache stores the origin's identity response; these filters
    # compress it again on every hit.
    gzip on;
    gzip_types application/json;
    gzip_proxied any;
    gzip_vary on;
    $br_http
    # nginx's default levels: gzip_comp_level $NGINX_GZIP_DEFAULT, brotli_comp_level $NGINX_BR_DEFAULT.
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
    # The levels the gateway stores its objects at.
    server {
        listen 127.0.0.1:$P_NGINX_LVL;
        gzip_comp_level $GW_GZIP_LEVEL;
        $br_lvl
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
}

mkdir -p "$TMP/nginx/logs"
NGINX_BR=0
if [[ -z "$NGINX_BR_WHY" ]]; then
	write_nginx_conf 1
	if "$NGINX_BIN" -t -q -p "$TMP/nginx/" -c "$TMP/nginx/nginx.conf" >"$TMP/nginx-t.log" 2>&1; then
		NGINX_BR=1
	else
		NGINX_BR_WHY="not available: nginx refused the brotli module ($(one_line "$TMP/nginx-t.log"))"
		log "nginx br rows: $NGINX_BR_WHY"
	fi
fi
((NGINX_BR)) || write_nginx_conf 0
start_nginx "http://127.0.0.1:$P_NGINX$PATH_DOC" "http://127.0.0.1:$P_NGINX_LVL$PATH_DOC"

# Varnish: as in cache.sh (foreground, own working directory, no management
# port, 256 MiB malloc), but with a VCL file instead of -b: the builtin VCL
# plus do_gzip for JSON, so Varnish gzips the origin's identity response
# once, at fetch (parameter gzip_level, default 6), stores the gzip, sends
# it as is to gzip clients and gunzips it on every hit for the others.
if [[ $(id -u) -eq 0 ]] && id varnish >/dev/null 2>&1 && id vcache >/dev/null 2>&1; then
	VARNISH_JAIL="unix,user=varnish,workuser=vcache"
else
	VARNISH_JAIL="none"
fi
cat >"$TMP/varnish.vcl" <<EOF
vcl 4.1;

backend origin {
    .host = "127.0.0.1";
    .port = "$P_ORIGIN";
}

sub vcl_backend_response {
    if (beresp.http.Content-Type ~ "^application/json") {
        set beresp.do_gzip = true;
    }
}
EOF
chmod 644 "$TMP/varnish.vcl"
# shellcheck disable=SC2054  # the commas belong to the -s argument
VARNISH_ARGS=(-F -j "$VARNISH_JAIL" -n "$SHM/varnish" -a "127.0.0.1:$P_VARNISH" -f "$TMP/varnish.vcl"
	-T none -s malloc,256m)
VARNISH_CMD="varnishd ${VARNISH_ARGS[*]}"
VARNISH_CMD="${VARNISH_CMD//$SHM/\$SHM}"
VARNISH_CMD="${VARNISH_CMD//$TMP/\$TMP}"
start VARNISH "$TMP/varnish.log" "${PIN_PROXY[@]}" "$VARNISHD_BIN" "${VARNISH_ARGS[@]}"
PARENTS+=("$PID_VARNISH")
if ! wait_http varnish "$PID_VARNISH" "$TMP/varnish.log" "http://127.0.0.1:$P_VARNISH$PATH_DOC"; then
	WHY[varnish]="not measured: varnishd did not start ($(one_line "$TMP/varnish.log"))"
	log "${WHY[varnish]}"
fi

if [[ -z "${WHY[gw]}" ]] && ! start_gw "$TMP/gateway.yaml" "$P_GW_ADMIN" "$P_GW"; then
	WHY[gw]="not measured: gateway did not start ($(one_line "$TMP/gateway.log"))"
	log "${WHY[gw]}"
fi

# server_pids TARGET lists the processes whose CPU is charged to TARGET.
# Both nginx targets are the same nginx (two server blocks).
# shellcheck disable=SC2046
server_pids() {
	case "$1" in
	nginx | nginxlvl) echo "$PID_NGINX" $(child_pids "$PID_NGINX") ;;
	varnish) echo "$PID_VARNISH" $(child_pids "$PID_VARNISH") ;;
	gw) echo "$PID_GW" ;;
	esac
}

for t in nginx varnish gw; do
	[[ -z "${WHY[$t]}" ]] || continue
	# shellcheck disable=SC2046
	check_pinned "$t" "$PROXY_CPU" $(server_pids "$t")
done

# ---------------------------------------------------------------- rows
# want_coding TARGET ENC: the Content-Encoding the target should answer a
# client accepting only ENC with (identity: no Content-Encoding).
# Varnish knows gzip only; a br-only client gets the gunzipped object.
want_coding() {
	if [[ $1 == varnish && $2 == br ]]; then
		echo identity
	else
		echo "$2"
	fi
}

# row_label TARGET ENC names the server and the level that produced ENC.
row_label() {
	local t=$1 enc=$2
	case "$t:$enc" in
	nginx:gzip) echo "nginx, gzip_comp_level $NGINX_GZIP_DEFAULT (default)" ;;
	nginx:br) echo "nginx, brotli_comp_level $NGINX_BR_DEFAULT (default)" ;;
	nginx:identity) echo "nginx" ;;
	nginxlvl:gzip) echo "nginx, gzip_comp_level $GW_GZIP_LEVEL" ;;
	nginxlvl:br) echo "nginx, brotli_comp_level $GW_BR_LEVEL" ;;
	varnish:gzip) echo "$VARNISH_SHORT, stores gzip (level 6)" ;;
	varnish:br) echo "$VARNISH_SHORT, stores gzip; gunzips for br-only clients" ;;
	varnish:identity) echo "$VARNISH_SHORT, stores gzip; gunzips" ;;
	gw:gzip) echo "gateway, stored gzip (level $GW_GZIP_LEVEL)" ;;
	gw:br) echo "gateway, stored br (quality $GW_BR_LEVEL)" ;;
	gw:identity) echo "gateway" ;;
	esac
}

# ae_args ENC prints the curl/wrk arguments for a client accepting only
# ENC; an identity client sends no Accept-Encoding at all (as curl and wrk
# do by default).
ae_args() { [[ $1 == identity ]] || printf '%s\n' -H "Accept-Encoding: $1"; }

# check_row TARGET ENC warms the cache with one request, then checks that
# the next response is a hit, carries the expected Content-Encoding and
# decodes to the origin's document. It records the body bytes of that
# response as sent (curl without --compressed) in BODY_BYTES and its
# coding in CODING. On failure it sets CHECK_WHY.
declare -A BODY_BYTES CODING
check_row() {
	local t=$1 enc=$2 url="${BASE[$1]}$PATH_DOC" f="$TMP/check-$1-$2" res ce want ae=()
	mapfile -t ae < <(ae_args "$enc")
	if ! curl -fsS -o /dev/null --max-time 5 "${ae[@]}" "$url" 2>"$f.err"; then
		CHECK_WHY="warm-up request failed: $(one_line "$f.err")"
		return 1
	fi
	res=$(curl -sS -D "$f.hdr" -o "$f.body" --max-time 5 "${ae[@]}" -w '%{http_code} %{size_download}' "$url" 2>"$f.err") || {
		CHECK_WHY="request after warm-up failed: $(one_line "$f.err")"
		return 1
	}
	tr -d '\r' <"$f.hdr" >"$f.txt"
	if [[ "${res% *}" != 200 ]]; then
		CHECK_WHY="request after warm-up answered status $res, want 200"
		return 1
	fi
	ce=$(awk -F': *' 'tolower($1) == "content-encoding" { print tolower($2) }' "$f.txt" | tail -n1)
	ce=${ce:-identity}
	want=$(want_coding "$t" "$enc")
	if [[ "$ce" != "$want" ]]; then
		CHECK_WHY="answered Content-Encoding $ce, want $want"
		return 1
	fi
	local ok=1 seen=""
	case "$t" in
	nginx | nginxlvl)
		seen=$(grep -i '^x-cache-status:' "$f.txt" || true)
		grep -qiE '^x-cache-status:[[:space:]]*HIT[[:space:]]*$' "$f.txt" || ok=0
		;;
	varnish)
		seen=$(grep -iE '^(x-varnish|age):' "$f.txt" | tr '\n' ' ' || true)
		grep -qiE '^x-varnish:[[:space:]]*[0-9]+[[:space:]]+[0-9]+[[:space:]]*$' "$f.txt" || ok=0
		;;
	gw)
		seen=$(grep -i '^cache-status:' "$f.txt" || true)
		grep -qiE '^cache-status:.*;[[:space:]]*hit([[:space:]]*[;,]|[[:space:]]*$)' "$f.txt" || ok=0
		;;
	esac
	if ((!ok)); then
		CHECK_WHY="the response after warm-up was not a hit (${seen:-no cache header})"
		return 1
	fi
	# Decoded, the body must be the origin's document: curl --compressed
	# decodes gzip and br (a custom Accept-Encoding replaces its own).
	if [[ $ce == identity ]]; then
		cp "$f.body" "$f.decoded"
	elif ! curl -fsS --compressed -o "$f.decoded" --max-time 5 "${ae[@]}" "$url" 2>"$f.err"; then
		CHECK_WHY="decoding the $ce response failed: $(one_line "$f.err")"
		return 1
	fi
	if ! cmp -s "$f.decoded" "$TMP/doc.json"; then
		CHECK_WHY="the $ce body does not decode to the origin's document"
		return 1
	fi
	BODY_BYTES[$t-$enc]=${res#* }
	CODING[$t-$enc]=$ce
}

# Rows: id|target|encoding|status. Status empty: measured; "not
# available: ..." is expected (no brotli for nginx) and not an error.
ROWS=()
for enc in "${ENCODINGS[@]}"; do
	for t in "${TARGETS[@]}"; do
		# The second nginx block differs only in levels; identity is the same.
		[[ ! ($t == nginxlvl && $enc == identity) ]] || continue
		status="${WHY[$t]}"
		if [[ -z "$status" && $enc == br && $t == nginx* && -n "$NGINX_BR_WHY" ]]; then
			status=$NGINX_BR_WHY
		fi
		if [[ -z "$status" ]] && ! check_row "$t" "$enc"; then
			status="not measured: $CHECK_WHY"
			log "$(row_label "$t" "$enc"), $enc: $status"
		fi
		ROWS+=("$enc-$t|$t|$enc|${status//|//}")
	done
done

# run_wrk DURATION runs wrk on the current row (CUR_URL, CUR_ENC).
run_wrk() {
	local ae=()
	mapfile -t ae < <(ae_args "$CUR_ENC")
	timeout "$LOAD_TIMEOUT" "${PIN_LOAD[@]}" wrk -t1 -c"$CONNS" --latency "${ae[@]}" -d "$1" "$CUR_URL"
}
warm_wrk() { run_wrk "$WARMUP" >/dev/null 2>&1 || true; }

origin_total() { curl -fsS --max-time 2 "http://127.0.0.1:$P_ORIGIN/_count" 2>/dev/null || echo x; }

# measured_wrk is the measured run; it also prints how many requests the
# origin got meanwhile (0 when every response was a hit).
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

# wrk_bytes_per_resp OUT: bytes wrk read (headers, chunk framing and body;
# wrk prints them in 1024-based units with two decimals, so about ±0.5%)
# divided by the requests completed.
wrk_bytes_per_resp() {
	awk '/ requests in / {
		n = $1; v = $5; u = v; sub(/^[0-9.]+/, "", u); v += 0
		m = 1
		if (u == "KB") m = 1024; else if (u == "MB") m = 1024^2; else if (u == "GB") m = 1024^3; else if (u == "TB") m = 1024^4
		if (n > 0) printf "%.0f", v * m / n; else print "nan"
	}' "$1"
}

# ---------------------------------------------------------------- measuring
wait_quiet

mkdir -p "$TMP/out"
# Rounds go over every row before repeating, so slow drift of the machine
# spreads over all rows alike.
for run in $(seq 1 "$RUNS"); do
	for i in "${!ROWS[@]}"; do
		IFS='|' read -r id t enc status <<<"${ROWS[$i]}"
		[[ -z "$status" ]] || continue
		CUR_URL="${BASE[$t]}$PATH_DOC"
		CUR_ENC=$enc
		out="$TMP/out/$id.run$run.txt"
		log "run $run/$RUNS: $(row_label "$t" "$enc"), Accept-Encoding: $enc, $CUR_URL"
		measure "$out" "$(server_pids "$t")" warm_wrk measured_wrk
		((M_RC == 0)) || log "wrk exited non-zero for $id"
		if ! res=$(parse_wrk "$out"); then
			log "could not parse wrk output for $id; output was:"
			tail -n 20 "$out" >&2 || true
			continue
		fi
		read -r rps reqs p50 p99 errs <<<"$res"
		cpu=$(cpu_us_per_req "$M_TICKS" "$reqs")
		oreq=$(awk '/^origin_requests:/ {print $2}' "$out")
		wire=$(wrk_bytes_per_resp "$out")
		echo "$rps $p50 $p99 $cpu $errs $M_OTHER ${oreq:--1} ${wire:-nan}" >>"$TMP/out/$id.samples"
		log "  -> $rps req/s, p50 ${p50}µs, p99 ${p99}µs, CPU ${cpu}µs/req, ${wire} B/resp read, errors $errs, origin requests ${oreq:-?}, other load ${M_OTHER}%"
		# Headers and chunk framing add a few hundred bytes to the body the
		# check saw (and wrk's rounding ±0.5%); far off means the coding
		# changed under load.
		body=${BODY_BYTES[$t-$enc]}
		if [[ "$wire" =~ ^[0-9]+$ ]] && ((wire * 100 < body * 99 || wire * 100 > body * 101 + 204800)); then
			log "  WARNING: wrk read $wire B per response, but the checked response had a body of ${BODY_BYTES[$t-$enc]} B (${CODING[$t-$enc]})"
		fi
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

# table_row ID TARGET ENC STATUS prints one row; ratios compare with
# nginx at its default level for the same Accept-Encoding.
table_row() {
	local id=$1 t=$2 enc=$3 status=$4 f="$TMP/out/$1.used" ref="$3-nginx" label
	label=$(row_label "$t" "$enc")
	if [[ ! -s "$f" ]]; then
		[[ $status == "not available"* ]] || MISSING=1
		# The status fills the Content-Encoding cell; the other 12 stay empty.
		echo "| $label | $enc | ${status:-not measured: load run failed} |$(printf ' |%.0s' {1..12})"
		return
	fi
	local p50 p99 errs other used oreq wire
	p50=$(median 2 "$f")
	p99=$(median 3 "$f")
	errs=$(median 5 "$f")
	other=$(max_col 6 "$f")
	oreq=$(median 7 "$f")
	wire=$(median 8 "$f")
	used="$(wc -l <"$f")/$(wc -l <"$TMP/out/$id.samples")"
	awk -v l="$label" -v ae="$enc" -v ce="${CODING[$t-$enc]:-?}" -v bb="${BODY_BYTES[$t-$enc]:-?}" -v wb="$wire" \
		-v r="${MED_RPS[$id]}" -v a="$p50" -v b="$p99" -v c="${MED_CPU[$id]}" \
		-v rr="${MED_RPS[$ref]:-}" -v rc="${MED_CPU[$ref]:-}" -v x="$oreq" -v e="$errs" -v o="$other" -v u="$used" 'BEGIN {
		qr = (rr + 0 > 0) ? sprintf("%.2f", r / rr) : "–"
		qc = (rc + 0 > 0) ? sprintf("%.2f", c / rc) : "–"
		xo = (x < 0) ? "?" : sprintf("%d", x)
		printf "| %s | %s | %s | %s | %s | %.0f | %.3f | %.3f | %.1f | %s | %s | %s | %d | %d | %s |\n",
			l, ae, ce, bb, wb, r, a / 1000, b / 1000, c, qr, qc, xo, e, o, u }'
}

NGINX_VERSION=$("$NGINX_BIN" -v 2>&1 | head -n1)
WRK_VERSION=$(wrk -v 2>&1 | head -n1 || true)
if ((NGINX_BR)); then
	BROTLI_NOTE="brotli filter module ($BROTLI_PKG $(dpkg-query -W -f '${Version}' "$BROTLI_PKG" 2>/dev/null || echo '?')): \`brotli on; brotli_types application/json;\`"
else
	BROTLI_NOTE="no brotli: $NGINX_BR_WHY"
fi

mkdir -p "$BENCH_DIR/results"
SECTION="$BENCH_DIR/results/30-compress.md"
{
	echo "## Compression (cache hits, 64 KiB JSON, gzip / br / none)"
	echo
	echo "Measured $MEASURE_START to $(date -u "+%H:%M:%S UTC") by \`bench/compress.sh\`:"
	echo "wrk rows $DURATION per run after a $WARMUP warmup, $RUNS run(s) per row."
	echo "Pinning: $PIN_NOTE."
	echo
	echo "The document: \`/catalog/$SIZE\` of \`bench/origin\`, $SIZE bytes of product JSON"
	echo "(ids, SKUs, names, prices, tags; \`gzip -6\`: $DOC_GZIP6 bytes), \`Content-Type: application/json\`,"
	echo "\`Cache-Control: public, max-age=3600\`, an ETag, identity encoding."
	echo
	echo "- $NGINX_VERSION: \`proxy_cache\` as in the cache section (1 worker, cache on ${SHM%/*},"
	echo "  upstream \`keepalive 256\`) plus \`gzip on; gzip_types application/json; gzip_proxied any; gzip_vary on;\`;"
	echo "  $BROTLI_NOTE. The cache holds the identity"
	echo "  response and the filters compress it on every hit. Two server blocks"
	echo "  of one nginx: nginx's default levels (\`gzip_comp_level $NGINX_GZIP_DEFAULT\`, \`brotli_comp_level $NGINX_BR_DEFAULT\`)"
	echo "  and the gateway's stored levels (\`gzip_comp_level $GW_GZIP_LEVEL\`, \`brotli_comp_level $GW_BR_LEVEL\`)."
	echo "- $VARNISH_VERSION: \`$VARNISH_CMD\`; the VCL is the"
	echo "  builtin one plus \`set beresp.do_gzip = true\` for \`application/json\` in \`vcl_backend_response\`:"
	echo "  it gzips once at fetch (\`gzip_level\` 6, the default), stores the gzip, sends it"
	echo "  to gzip clients and gunzips it on every hit for the others. Varnish has no brotli."
	echo "- gateway: the cache section's config plus \`compress: {enabled: true}\` on the route"
	echo "  (\`access_log\` off there, as nginx's)"
	echo "  (br, zstd, gzip; cached objects encoded once per coding at the \`default\` level:"
	echo "  gzip $GW_GZIP_LEVEL, brotli quality $GW_BR_LEVEL; a hit runs no compressor)"
	echo "- $WRK_VERSION"
	env_lines
	echo
	echo "### Cache hits by Accept-Encoding ($CONNS connections)"
	echo
	echo "\`wrk -t1 -c$CONNS --latency -H 'Accept-Encoding: gzip'\` (or \`br\`; the identity"
	echo "rows send no Accept-Encoding). Before measuring, each row got one request,"
	echo "and the next response was checked: a hit (nginx \`X-Cache-Status: HIT\`,"
	echo "Varnish two ids in \`X-Varnish\`, gateway \`Cache-Status: gateway; hit\`), the"
	echo "Content-Encoding shown, and a body that decodes to the document. body B:"
	echo "that response's body as sent (\`curl -s -H 'Accept-Encoding: …' -o /dev/null"
	echo "-w '%{size_download}'\`, no decoding). wire B/resp: what wrk read per response"
	echo "during the measured run (headers, chunk framing and body; ±0.5%), so it also"
	echo "shows the coding held under load. Ratios are to nginx at its default level"
	echo "(the first row) for the same Accept-Encoding."
	echo
	echo "| target | Accept-Encoding | Content-Encoding | body B | wire B/resp | req/s | p50 ms | p99 ms | CPU µs/req | req/s ÷ nginx | CPU/req ÷ nginx | origin req | errors | other load % | runs |"
	echo "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	for i in "${!ROWS[@]}"; do
		IFS='|' read -r id t enc status <<<"${ROWS[$i]}"
		table_row "$id" "$t" "$enc" "$status"
	done
	echo
	note_medians
	echo "CPU µs/req is user+system time of the server under"
	echo "test (nginx: master, worker, cache manager; Varnish: manager and worker"
	echo "process) over the measured run, divided by requests completed; it"
	echo "excludes the origin. origin req: requests that reached the origin during"
	echo "the measured run (0 = all hits). errors counts non-2xx responses and"
	echo "socket errors."
	note_other_load
	if [[ -n "$GW_STATS" ]]; then
		echo
		echo "Gateway \`/cache/stats\` after the runs: \`$GW_STATS\`"
	fi
} >"$SECTION"

publish_section "$SECTION" "some rows were not measured; see the table"
