#!/usr/bin/env bash
# Runs every test suite: formatting, clippy, rustdoc, the Rust tests (unit and integration, with the
# emulator and the server on 127.0.0.1:0) and the Python client tests (boto3 fidelity,
# ADBC). Installs what it needs: Python packages go into a virtualenv under ~/.cache.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/aws-flightsql/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
venv="${AWS_FLIGHTSQL_VENV:-$HOME/.cache/aws-flightsql/venv}"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== vendor/: each pruned SDK crate is exactly what scripts/prune-sdk.py writes"
for pruned in vendor/*/; do
  python3 scripts/prune-sdk.py --check "${pruned%/}"
done

echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

echo "== cargo check --no-default-features (the server without the demo's emulator)"
cargo check --no-default-features --quiet

echo "== cargo doc (broken or private links fail)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

echo "== flight_sql_client (arrow-flight's CLI, for tests/it/rust_cli.rs)"
tools="${AWS_FLIGHTSQL_TOOLS_DIR:-$HOME/.cache/aws-flightsql/tools}"
if [ ! -x "$tools/bin/flight_sql_client" ]; then
  # A test tool: a debug build compiles in minutes and reuses the workspace's dependencies.
  CARGO_TARGET_DIR="$CARGO_TARGET_DIR" cargo install --quiet --debug arrow-flight --version 59.3.2 \
    --features "cli flight-sql tls-ring" --root "$tools"
fi
export AWS_FLIGHTSQL_TOOLS_DIR="$tools"

echo "== datafusion-remote (a DataFusion program over Flight SQL, for tests/it/datafusion_remote.rs)"
# Its own crate outside the workspace, so the Flight SQL table provider's DataFusion features
# (serde, datafusion-proto, parquet) stay out of the server's builds. It shares the target
# directory: about 220 of its 374 dependencies are built once for both (same versions and
# features), the rest (DataFusion with those features, parquet) only for it.
df_remote=tests/clients/datafusion-remote/Cargo.toml
# No clippy here: it would build its whole dependency tree (DataFusion with datafusion-proto's
# features, parquet) a second time as check artifacts, minutes on a fresh machine for a
# 100-line test client; its compiler warnings are errors instead (its [lints]).
cargo fmt --manifest-path "$df_remote" -- --check
cargo build --manifest-path "$df_remote" --locked
export AWS_FLIGHTSQL_DF_REMOTE_BIN="${AWS_FLIGHTSQL_DF_REMOTE_BIN:-$CARGO_TARGET_DIR/debug/datafusion-remote}"

echo "== cargo test"
cargo build --workspace --bins
cargo test --workspace

echo "== python tests"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
AWS_FLIGHTSQL_BIN_DIR="$CARGO_TARGET_DIR/debug" "$venv/bin/python" -m pytest -q tests/python

echo "== example: examples/watch_progress.py against serve --demo"
# The demo on a free port; its banner names the emulator's URL, its last line the server's.
demo_dir="$(mktemp -d)"
"$CARGO_TARGET_DIR/debug/aws-flightsql" serve --demo --listen 127.0.0.1:0 \
  >"$demo_dir/out" 2>"$demo_dir/err" &
demo_pid=$!
trap 'kill "$demo_pid" 2>/dev/null || true; rm -rf "$demo_dir"' EXIT
for _ in $(seq 600); do
  grep -q '^aws-flightsql listening on ' "$demo_dir/out" && break
  kill -0 "$demo_pid" 2>/dev/null || { cat "$demo_dir/err"; exit 1; }
  sleep 0.1
done
demo_uri="$(sed -n 's/^aws-flightsql listening on //p' "$demo_dir/out")"
demo_emulator="$(sed -n 's/^Demo mode: an in-process EC2 emulator at \([^ ]*\) .*/\1/p' "$demo_dir/out")"
[ -n "$demo_uri" ] && [ -n "$demo_emulator" ] || { cat "$demo_dir/out" "$demo_dir/err"; exit 1; }
"$venv/bin/python" examples/watch_progress.py --uri "$demo_uri" --emulator-url "$demo_emulator" \
  --task-seconds 4 --out "$demo_dir/watch_progress.png"
test -s "$demo_dir/watch_progress.png"
kill "$demo_pid"
wait "$demo_pid" 2>/dev/null || true
trap - EXIT
rm -rf "$demo_dir"

echo "== JDBC tests (Arrow Flight SQL JDBC driver 18.1.0, 18.2.0 and the newest, 18.3.0; sqlline)"
if ! command -v mvn >/dev/null || ! command -v javac >/dev/null; then
  apt-get update -qq && apt-get install -y -qq --no-install-recommends maven openjdk-17-jdk-headless
fi
jdbc_failed=0
for version in 18.1.0 18.2.0 18.3.0; do
  # Every version is pinned in the pom: after the first run Maven needs no network.
  rm -rf tests/clients/jdbc/target/surefire-reports
  # (Maven 3.8 prints colour resets even in batch mode: strip them.)
  AWS_FLIGHTSQL_BIN_DIR="$CARGO_TARGET_DIR/debug" mvn -q -B -f tests/clients/jdbc/pom.xml \
    test -Dflightsql.jdbc.version="$version" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' || jdbc_failed=1
  python3 - "$version" tests/clients/jdbc/target/surefire-reports <<'PY'
import collections, glob, re, sys, xml.etree.ElementTree as ET
tests = failed = skipped = 0
for path in glob.glob(sys.argv[2] + "/TEST-*.xml"):
    suite = ET.parse(path).getroot()
    tests += int(suite.get("tests")); skipped += int(suite.get("skipped"))
    failed += int(suite.get("failures")) + int(suite.get("errors"))
print(f"jdbc-{sys.argv[1]}: {tests - failed - skipped} passed, {failed} failed, {skipped} skipped")
# The time zone matrix (TimeZoneMatrixTest): with the README's URL, per JVM zone.
cells = collections.defaultdict(list)
for path in glob.glob(sys.argv[2] + "/*TimeZoneMatrixTest*-output.txt"):
    for line in open(path):
        m = re.match(r"MATRIX (\S+) (\S+) readme (.+?): (.*)", line.strip())
        if m:
            cells[m.group(2)].append(f"{m.group(3)}: {m.group(4)}")
for zone in sorted(cells):
    print(f"  matrix {sys.argv[1]} {zone}: " + "; ".join(cells[zone]))
PY
done
exit "$jdbc_failed"
