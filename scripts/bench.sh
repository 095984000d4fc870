#!/usr/bin/env bash
# Runs the benchmarks and prints their figures (not part of the test suite):
#   bench/run.py          fan-out, time to first batch, throughput against boto3 and the AWS
#                         CLI, peak RSS, pushdown (release binaries, emulator latency)
#   bench/organization.py one GROUP BY over 100 accounts x 16 regions x 200 tasks, 50 ms per
#                         call (STS included): wall time cold and warm against the critical
#                         path, peak RSS, requests in flight per account x region
#   bench/compute.sh      DataFusion's own computation (aggregates, string and date
#                         functions, CASE, DISTINCT) over generate_series, no AWS call
#   cargo bench --profile release --bench sdk_pages   what aws-sdk-ec2 costs per page (the
#                         release profile builds it at opt-level 0) against the raw HTTP
#                         page; `--profile release` reuses the release build
# Pass --quick for a shorter run.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/aws-flightsql/target}"
venv="${AWS_FLIGHTSQL_BENCH_VENV:-$HOME/.cache/aws-flightsql/bench-venv}"
cli_venv="${AWS_FLIGHTSQL_CLI_VENV:-$HOME/.cache/aws-flightsql/awscli-venv}"

cargo build --release --workspace --bins --benches
if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
# The AWS CLI pins its own botocore: it gets a virtualenv of its own.
if [ ! -x "$cli_venv/bin/aws" ]; then
  python3 -m venv "$cli_venv"
  "$cli_venv/bin/python" -m pip install --quiet --disable-pip-version-check awscli==1.46.3
fi

AWS_FLIGHTSQL_BIN_DIR="$CARGO_TARGET_DIR/release" AWS_CLI="$cli_venv/bin/aws" \
  "$venv/bin/python" bench/run.py "$@"
AWS_FLIGHTSQL_BIN_DIR="$CARGO_TARGET_DIR/release" \
  "$venv/bin/python" bench/organization.py "$@"
bench/compute.sh "$CARGO_TARGET_DIR/release"
cargo bench --profile release --bench sdk_pages
