#!/usr/bin/env bash
# Times the README's first command on a fresh clone with an empty target directory: clones
# this repository's HEAD into a temporary directory, runs
# `cargo run --release --timings -- serve --demo` there and prints the seconds until the
# server says it is listening (README "Set-up times"). Cargo's per-crate timings are kept
# beside it as fresh-build-timings.html. Uses the crates.io registry already downloaded,
# like the README's figures; run it on an otherwise idle machine.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work=$(mktemp -d "${TMPDIR:-/tmp}/aws-flightsql-fresh-XXXX")
trap 'kill "${server:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
git clone -q "$repo" "$work/repo"
export CARGO_TARGET_DIR="$work/target"
cd "$work/repo"
start=$(date +%s)
cargo run --release --timings -- serve --demo --listen 127.0.0.1:0 >"$work/serve.log" 2>&1 &
server=$!
until grep -q "listening on" "$work/serve.log"; do
  kill -0 $server 2>/dev/null || { tail -20 "$work/serve.log" >&2; exit 1; }
  sleep 1
done
end=$(date +%s)
echo "cargo run --release -- serve --demo answered after $((end - start)) s (fresh clone, empty target)"
cp "$CARGO_TARGET_DIR"/cargo-timings/cargo-timing.html "$repo/fresh-build-timings.html" 2>/dev/null ||
  cp "$work/repo"/target/cargo-timings/cargo-timing.html "$repo/fresh-build-timings.html" 2>/dev/null || true
