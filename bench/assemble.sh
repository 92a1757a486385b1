#!/usr/bin/env bash
# Rebuilds bench/RESULTS.md from the sections in bench/results/*.md, in file
# name order. Each benchmark script owns one section file (10-passthrough.md,
# later ones e.g. 20-cache.md, 30-compression.md) and calls this afterwards,
# so re-running one benchmark never drops another's results.
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$BENCH_DIR/RESULTS.md"
tmp="$out.tmp.$$"
{
	echo "# Benchmark results"
	echo
	echo "Generated from \`bench/results/*.md\` by \`bench/assemble.sh\`; edit or"
	echo "re-run the section's script, not this file. See \`bench/README.md\`."
	shopt -s nullglob
	for f in "$BENCH_DIR"/results/*.md; do
		echo
		cat "$f"
	done
} >"$tmp"
mv "$tmp" "$out"
