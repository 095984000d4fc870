#!/usr/bin/env bash
# Runs every test suite: formatting, clippy, the Rust tests (unit and integration, with the
# emulator and the server on 127.0.0.1:0) and the Python client tests (boto3 fidelity,
# ADBC). Installs what it needs: Python packages go into a virtualenv under ~/.cache.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/aws-flightsql/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
venv="${AWS_FLIGHTSQL_VENV:-$HOME/.cache/aws-flightsql/venv}"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

echo "== cargo test"
cargo build --workspace --bins
cargo test --workspace

echo "== python tests"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
AWS_FLIGHTSQL_BIN_DIR="$CARGO_TARGET_DIR/debug" "$venv/bin/python" -m pytest -q tests/python
