#!/usr/bin/env bash
# HTTP/3 benchmark: the gateway's HTTP/3 listener (`http3: true`) against
# its own HTTP/2 over TLS on the same listener, and against Caddy's
# HTTP/3, all in front of the same origin (bench/origin), measured with
# one client (bench/h3bench: quic-go's http3.Transport, or net/http's
# HTTP/2 transport with the same code) from H3_CONNS connections carrying
# H3_CONC concurrent streams.
#
#   hit:  a cached 1 KiB response (gateway `cache.enabled`); Caddy has no
#         HTTP cache in its Debian build, so its row is a static `respond`
#         of the same body: a ceiling, not a cache;
#   pass: a response the origin forbids storing, proxied every time
#         (gateway route without cache, Caddy `reverse_proxy`).
#
# Usage: bash bench/http3.sh
# Knobs (environment):
#   RUNS=3 DURATION=10s WARMUP=2s   runs (medians), run length, warm-up
#   QUICK=1         smoke test: RUNS=1 DURATION=2s
#   H3_CONNS=4 H3_CONC=64   connections and concurrent streams
#   BODY=1024       response body bytes
#   PORT_BASE=32600 ports PORT_BASE..PORT_BASE+3 (TCP and UDP)
#   LOAD_CPU=0 PROXY_CPU=1  cores for client+origin and the server under test
#   KEEP_TMP=1      keep the temp dir (configs, logs, raw output)
#   OTHER_MAX=15 RETRIES=2 QUIET_WAIT=60  interference handling (lib.sh)
#   NOTE="..."      a sentence added to the section (e.g. on a shared machine)
#
# Writes bench/results/97-http3.md and reassembles bench/RESULTS.md.
# Exits 1 on a harness error, 2 when a row could not be measured.

# PID_NAME variables are set by start() (lib.sh) through eval.
# shellcheck disable=SC2153
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
QUIET_WAIT="${QUIET_WAIT:-60}"
bench_knobs
H3_CONNS="${H3_CONNS:-4}"
H3_CONC="${H3_CONC:-64}"
BODY="${BODY:-1024}"
PORT_BASE="${PORT_BASE:-32600}"
for v in H3_CONNS H3_CONC BODY; do
	[[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v=${!v}: must be a positive integer"
done
((H3_CONC >= H3_CONNS)) || die "H3_CONC=$H3_CONC: fewer streams than connections"
P_ORIGIN=$PORT_BASE
P_GW=$((PORT_BASE + 1))
P_GW_ADMIN=$((PORT_BASE + 2))
P_CADDY=$((PORT_BASE + 3))

bench_tools
if ! command -v caddy >/dev/null; then
	sudo=""
	[[ $(id -u) -eq 0 ]] || sudo=sudo
	log "installing caddy"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq caddy >/dev/null
fi
# The Debian package may start its system service; the bench runs its own.
CADDY_BIN="$(command -v caddy)"
command -v openssl >/dev/null || die "openssl not found (for the test certificate)"
bench_pinning
bench_tmp
for p in $P_ORIGIN $P_GW $P_GW_ADMIN $P_CADDY; do
	port_free "$p" || die "port 127.0.0.1:$p is in use; set PORT_BASE to another range"
done

log "building origin and h3bench"
(cd "$REPO_DIR" && go build -o "$TMP/origin" ./bench/origin &&
	go build -o "$TMP/h3bench" ./bench/h3bench) >"$TMP/build.log" 2>&1 || {
	cat "$TMP/build.log" >&2
	die "build failed"
}
# One self-signed certificate for 127.0.0.1, served by both servers.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
	-keyout "$TMP/key.pem" -out "$TMP/cert.pem" >"$TMP/openssl.log" 2>&1 || {
	cat "$TMP/openssl.log" >&2
	die "openssl could not make a certificate"
}

cat >"$TMP/gateway.yaml" <<YAML
shutdown_grace: 5s
log:
  level: warn
# As Caddy here (no access log); bench/observability.sh measures its cost.
access_log:
  enabled: false
listeners:
  - address: "127.0.0.1:$P_GW"
    tls: {cert_file: "$TMP/cert.pem", key_file: "$TMP/key.pem"}
    http3: true
admin:
  address: "127.0.0.1:$P_GW_ADMIN"
upstreams:
  origin:
    targets: ["http://127.0.0.1:$P_ORIGIN"]
    protocol: http1
    max_idle_per_target: 256
routes:
  - path: /cacheable/
    upstream: origin
    cache:
      enabled: true
  - path: /
    upstream: origin
YAML
declare -A WHY
WHY[gw]=$(build_gateway "$TMP/gateway.yaml" "http3 config")
[[ -z "${WHY[gw]}" ]] || log "${WHY[gw]}"

# Caddy: the same certificate, HTTP/1.1, HTTP/2 and HTTP/3 (its default);
# no admin endpoint, no automatic HTTPS, state under TMP.
head -c "$BODY" </dev/zero | tr '\0' 'x' >"$TMP/body.txt"
cat >"$TMP/Caddyfile" <<CADDY
{
	admin off
	# The client names no server (an IP address sends no SNI), which
	# Caddy's QUIC handshake otherwise fails with an internal error.
	default_sni 127.0.0.1
	auto_https off
	skip_install_trust
	storage file_system $TMP/caddy-data
	servers {
		protocols h1 h2 h3
	}
}
https://127.0.0.1:$P_CADDY {
	tls $TMP/cert.pem $TMP/key.pem
	log {
		output discard
	}
	handle /cacheable/* {
		respond "$(cat "$TMP/body.txt")" 200
	}
	handle {
		reverse_proxy 127.0.0.1:$P_ORIGIN
	}
}
CADDY

start ORIGIN "$TMP/origin.log" "${PIN_LOAD[@]}" "$TMP/origin" -addr "127.0.0.1:$P_ORIGIN" -size "$BODY"
wait_http origin "$PID_ORIGIN" "$TMP/origin.log" "http://127.0.0.1:$P_ORIGIN/" || die "origin did not start"
if [[ -z "${WHY[gw]}" ]]; then
	start_gw "$TMP/gateway.yaml" "$P_GW_ADMIN" || WHY[gw]="not measured: gateway did not start ($(one_line "$TMP/gateway.log"))"
	if [[ -z "${WHY[gw]}" ]]; then
		wait_http gateway "$PID_GW" "$TMP/gateway.log" "https://127.0.0.1:$P_GW/" --cacert "$TMP/cert.pem" ||
			WHY[gw]="not measured: gateway did not answer over TLS"
		check_pinned gateway "$PROXY_CPU" "$PID_GW"
	fi
fi
start CADDY "$TMP/caddy.log" env HOME="$TMP" XDG_DATA_HOME="$TMP/caddy-data" XDG_CONFIG_HOME="$TMP/caddy-config" \
	"${PIN_PROXY[@]}" "$CADDY_BIN" run --adapter caddyfile --config "$TMP/Caddyfile"
WHY[caddy]=""
wait_http caddy "$PID_CADDY" "$TMP/caddy.log" "https://127.0.0.1:$P_CADDY/" --cacert "$TMP/cert.pem" ||
	WHY[caddy]="not measured: caddy did not start ($(one_line "$TMP/caddy.log"))"
CADDY_VERSION=$("$CADDY_BIN" version 2>/dev/null | awk '{print $1; exit}')

# Rows: KIND-SERVER; the gateway's HTTP/3 row of a kind is its baseline.
KINDS=(hit pass)
TARGETS=(gwh3 gwh2 caddy)
declare -A LABEL PORT PROTO PATHOF
LABEL[gwh3]="gateway HTTP/3"
LABEL[gwh2]="gateway HTTP/2 (TLS)"
LABEL[caddy]="Caddy $CADDY_VERSION HTTP/3"
PORT=([gwh3]=$P_GW [gwh2]=$P_GW [caddy]=$P_CADDY)
PROTO=([gwh3]=h3 [gwh2]=h2 [caddy]=h3)
PATHOF=([hit]=/cacheable/$BODY [pass]=/nostore)
why() { if [[ $1 == caddy ]]; then echo "${WHY[caddy]}"; else echo "${WHY[gw]}"; fi; }
server_pid() { if [[ $1 == caddy ]]; then echo "$PID_CADDY"; else echo "$PID_GW"; fi; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }

# Called through measure (lib.sh).
# shellcheck disable=SC2317
warm() {
	timeout $(($(seconds "$WARMUP") + 60)) "${PIN_LOAD[@]}" "$TMP/h3bench" -url "$URL" -proto "$P" -ca "$TMP/cert.pem" \
		-conns "$H3_CONNS" -c "$H3_CONC" -d "$WARMUP" -size "$BODY" >"$TMP/warmup.out" 2>&1 ||
		log "  warm-up failed: $(one_line "$TMP/warmup.out")"
}
# shellcheck disable=SC2317
load() {
	timeout "$LOAD_TIMEOUT" "${PIN_LOAD[@]}" "$TMP/h3bench" -url "$URL" -proto "$P" -ca "$TMP/cert.pem" \
		-conns "$H3_CONNS" -c "$H3_CONC" -d "$DURATION" -size "$BODY"
}

wait_quiet
MISSING=0
for k in "${KINDS[@]}"; do for t in "${TARGETS[@]}"; do : >"$TMP/$k-$t.txt"; done; done
for run in $(seq 1 "$RUNS"); do
	for k in "${KINDS[@]}"; do
		for t in "${TARGETS[@]}"; do
			[[ -z "$(why "$t")" ]] || continue
			URL="https://127.0.0.1:${PORT[$t]}${PATHOF[$k]}"
			P=${PROTO[$t]}
			log "run $run/$RUNS $k $t: $H3_CONNS connections, $H3_CONC streams, $DURATION"
			measure "$TMP/$k-$t-$run.out" "$(server_pid "$t")" warm load
			line=$(grep -m1 '^proto=' "$TMP/$k-$t-$run.out" || true)
			if ((M_RC != 0)) || [[ -z "$line" ]]; then
				log "  $k $t failed (exit $M_RC):"
				cat "$TMP/$k-$t-$run.out" >&2 || true
				MISSING=1
				continue
			fi
			echo "$run $(field rps "$line") $(field p50_us "$line") $(field p99_us "$line") $(cpu_us_per_req "$M_TICKS" "$(field requests "$line")") $(field errors "$line") $M_OTHER" >>"$TMP/$k-$t.txt"
			log "  $line cpu_us/req=$(cpu_us_per_req "$M_TICKS" "$(field requests "$line")") other=${M_OTHER}%"
		done
	done
done

# ratio_med KIND T COL: median over the runs of T's COL ÷ the gateway's
# HTTP/3 row of the same kind, same run.
ratio_med() {
	join <(sort -k1,1 "$TMP/$1-$2.txt") <(sort -k1,1 "$TMP/$1-gwh3.txt") |
		awk -v c="$3" -v n="$(awk 'NR==1 { print NF }' "$TMP/$1-gwh3.txt")" '$(c) > 0 && $(c + n - 1) > 0 { print $(c) / $(c + n - 1) }' |
		sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) printf "%.2f", v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

mkdir -p "$BENCH_DIR/results"
SECTION="$BENCH_DIR/results/97-http3.md"
{
	echo "## HTTP/3: the gateway against its own HTTP/2 and against Caddy"
	echo
	echo "Measured $MEASURE_START to $(date -u "+%H:%M:%S UTC") by \`bench/http3.sh\`:"
	echo "$RUNS run(s) of $DURATION after $WARMUP of warm-up; $H3_CONNS connections carrying $H3_CONC"
	echo "concurrent streams; $BODY-byte bodies. Pinning: $PIN_NOTE."
	echo
	echo "- origin: \`bench/origin\` (HTTP/1.1): \`/cacheable/$BODY\` with \`Cache-Control: public, max-age=3600\`,"
	echo "  \`/nostore\` with \`no-store\`"
	echo "- gateway: one TLS listener with \`http3: true\` (HTTP/2 by ALPN on TCP, HTTP/3 on UDP, same port), access log"
	echo "  off; \`/cacheable/\` cached, the rest passed to the origin"
	echo "- Caddy $CADDY_VERSION (Debian package), \`protocols h1 h2 h3\`, the same certificate, no log: the Debian build"
	echo "  has no HTTP cache, so its **hit** row is a static \`respond\` of the same $BODY bytes (a ceiling for"
	echo "  a cache hit, not a cache) and its **pass** row \`reverse_proxy\` to the origin"
	echo "- client: \`bench/h3bench\`: quic-go's \`http3.Transport\` for HTTP/3, net/http's HTTP/2 transport for"
	echo "  HTTP/2, one connection per transport, every answer checked (200, $BODY bytes, the protocol asked)"
	env_lines
	for k in "${KINDS[@]}"; do
		echo
		if [[ $k == hit ]]; then echo "### Cache hits (Caddy: static respond)"; else echo "### Pass-through (no-store)"; fi
		echo
		echo "| server | runs | req/s | p50 ms | p99 ms | server CPU µs/req | req/s ÷ gateway HTTP/3 | CPU ÷ gateway HTTP/3 | errors | other load % |"
		echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
		for t in "${TARGETS[@]}"; do
			f="$TMP/$k-$t.txt"
			if [[ ! -s "$f" ]]; then
				w=$(why "$t")
				echo "| ${LABEL[$t]} | ${w:-not measured (see the log)} | | | | | | | | |"
				continue
			fi
			used_samples "$f" "$f.used" 7
			rr=""; cr=""
			if [[ $t != gwh3 && -s "$TMP/$k-gwh3.txt" ]]; then rr=$(ratio_med "$k" "$t" 2); cr=$(ratio_med "$k" "$t" 5); fi
			awk -v l="${LABEL[$t]}" -v r="$(wc -l <"$f.used")/$(wc -l <"$f")" -v rps="$(median 2 "$f.used")" \
				-v p50="$(median 3 "$f.used")" -v p99="$(median 4 "$f.used")" -v cpu="$(median 5 "$f.used")" \
				-v rr="$rr" -v cr="$cr" -v e="$(max_col 6 "$f.used")" -v o="$(max_col 7 "$f.used")" 'BEGIN {
				printf "| %s | %s | %.0f | %.2f | %.2f | %.1f | %s | %s | %d | %d |\n", l, r, rps, p50 / 1000, p99 / 1000, cpu, rr, cr, e, o }'
		done
	done
	echo
	echo "Ratios (÷ gateway HTTP/3) are medians of same-run ratios against the gateway's"
	echo "HTTP/3 row of the same table. server CPU is the user+system time of the"
	echo "gateway or Caddy process during the measured requests only, per request"
	echo "(ticks are ${CLK_TCK}/s); the client (quic-go's or net/http's) shares the other"
	echo "core with the origin, and HTTP/3's client costs more than HTTP/2's, which"
	echo "limits the HTTP/3 rows as much as the servers do."
	note_medians
	note_other_load
	if [[ -n "${NOTE:-}" ]]; then
		echo
		echo "$NOTE"
	fi
} >"$SECTION"

publish_section "$SECTION" "some rows were not measured; see the log"
