#!/usr/bin/env bash
# What DataFusion's own computation costs in a release build, with no AWS call: queries over
# `generate_series` against `serve --demo`, best of three wall times each, through the
# bundled client. The release profile builds DataFusion's functions and physical
# expressions at opt-level 0 (README "Set-up times"); run this with two builds' binary
# directories to compare them:
#   bench/compute.sh [BIN_DIR]   (default: $CARGO_TARGET_DIR/release)
set -euo pipefail
bin_dir="${1:-${CARGO_TARGET_DIR:-$HOME/.cache/aws-flightsql/target}/release}"
bin="$bin_dir/aws-flightsql"
[ -x "$bin" ] || { echo "no $bin: build it with cargo build --release" >&2; exit 2; }

log=$(mktemp)
"$bin" serve --demo --listen 127.0.0.1:0 >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -f "$log"' EXIT
uri=""
for _ in $(seq 300); do
  uri=$(grep -o 'grpc://[0-9.:]*' "$log" | head -1 || true)
  [ -n "$uri" ] && break
  kill -0 $server 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$uri" ] || { echo "the server did not start: $log" >&2; exit 1; }

run() {
  local best=""
  for _ in 1 2 3; do
    local start end
    start=$(date +%s%N)
    "$bin" sql --connect "$uri" "$1" >/dev/null
    end=$(date +%s%N)
    local ms=$(((end - start) / 1000000))
    if [ -z "$best" ] || [ "$ms" -lt "$best" ]; then best=$ms; fi
  done
  printf '| %s | %s ms |\n' "$2" "$best"
}

echo "| query (best of 3, $bin) | wall time |"
echo "|---|---|"
run "SELECT value % 1000 AS k, sum(value), avg(value), min(value), max(value), count(*) FROM generate_series(1, 5000000) GROUP BY 1 ORDER BY 1 LIMIT 1" \
  "5M rows: sum, avg, min, max, count GROUP BY 1,000 keys"
run "SELECT count(*) FROM generate_series(1, 2000000) WHERE lower(concat('Task-', CAST(value AS VARCHAR))) LIKE '%77%'" \
  "2M rows: lower(concat(...)) LIKE"
run "SELECT date_trunc('hour', to_timestamp(value)) AS h, count(*) FROM generate_series(1, 2000000) GROUP BY 1 ORDER BY 1 LIMIT 1" \
  "2M rows: date_trunc(to_timestamp(...)) GROUP BY"
run "SELECT count(*) FROM generate_series(1, 5000000) WHERE CASE WHEN value % 3 = 0 THEN value % 7 IN (1, 2, 3) ELSE false END" \
  "5M rows: CASE with an IN list"
run "SELECT count(DISTINCT value % 100000) FROM generate_series(1, 5000000)" \
  "5M rows: count(DISTINCT ...)"
