#!/usr/bin/env bash
# Runs each cargo-fuzz target for a bounded time (FUZZ_SECONDS, default 120 s each): tickets
# and prepared-statement handles, the EC2 emulator's request pipeline, the SQL depth check,
# the server's decoder of DescribeStoreImageTasks answers (held to the SDK's own decoder).
# Needs the nightly toolchain and cargo-fuzz (installed here when missing). Not part of CI.
#   scripts/fuzz.sh                   # every target
#   FUZZ_SECONDS=600 scripts/fuzz.sh tickets
# A crash leaves its input in fuzz/artifacts/<target>/ and fails the script; replay it with
#   cargo +nightly fuzz run --dev --fuzz-dir fuzz <target> fuzz/artifacts/<target>/<file>
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-120}"
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  targets=(tickets emulator_request sql_depth describe_answer)
fi
if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo +nightly install cargo-fuzz --locked
fi
# Instrumented builds share nothing with the normal ones: keep them apart.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/aws-flightsql/fuzz-target}"

for target in "${targets[@]}"; do
  echo "== fuzz $target for ${seconds}s"
  mkdir -p "fuzz/corpus/$target"
  # --dev: the dependency tree (DataFusion, the AWS SDK) builds in minutes instead of most
  # of an hour; the fuzzed code keeps its debug assertions and overflow checks.
  cargo +nightly fuzz run --dev --fuzz-dir fuzz "$target" \
    "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
    -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=4096 -print_final_stats=1
done
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, no crash"
