#!/usr/bin/env bash
# The one test command: sets up, builds every configuration and runs every test.
#   scripts/test.sh            default suite (well under 30 minutes on 2 cores)
#   RILL_HEAVY=1 scripts/test.sh   longer fuzzing and more differential strings
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
NODE=$ROOT/node_modules/.bin/node
FUZZ_SECONDS=${RILL_FUZZ_SECONDS:-60}
DIFF_STRINGS=${RILL_DIFF_STRINGS:-5000}
if [ "${RILL_HEAVY:-0}" = 1 ]; then FUZZ_SECONDS=600; DIFF_STRINGS=50000; fi

bash scripts/setup.sh || { echo "setup failed"; exit 1; }

passed=0 failed=0 failures=()
step() {  # step NAME COMMAND...: runs a step, records the outcome
  local name=$1; shift
  local t0=$SECONDS
  echo "=== $name"
  if "$@"; then
    passed=$((passed + 1)); echo "--- ok: $name ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1)); failures+=("$name"); echo "--- FAILED: $name ($((SECONDS - t0)) s)"
  fi
}
build() { cmake --preset "$1" >/dev/null && cmake --build --preset "$1"; }
quiet_gtest() {  # runs a GoogleTest binary, printing only its verdict lines unless it fails
  local log; log=$(mktemp)
  "$@" >"$log" 2>&1; local rc=$?
  grep -E "^\[ vectors|^\[  (PASSED|FAILED)|^\[==========\] .* ran" "$log"
  [ $rc -ne 0 ] && grep -B2 -A12 -E "Failure|ERROR|runtime error" "$log" | head -80
  rm -f "$log"
  return $rc
}
fuzz() {  # fuzz TARGET [corpus dirs...]: a short run from the checked-in seeds
  local target=$1; shift
  local work; work=$(mktemp -d)
  build/fuzz/"$target" -max_total_time="$FUZZ_SECONDS" -max_len=4096 -rss_limit_mb=4096 -print_final_stats=1 \
    "$work" "$@" 2>&1 | grep -E "stat::number_of_executed_units|ERROR|SUMMARY|Done"
  local rc=${PIPESTATUS[0]}
  rm -rf "$work"
  return "$rc"
}

export RILL_SOURCE_DIR=$ROOT RILL_VOCAB_DIR=$ROOT/.cache/llama.cpp/models
step "build native"        build native
step "build asan"          build asan
step "build wasm-simd"     build wasm-simd
step "build wasm-relaxed"  build wasm-relaxed
step "build fuzz"          build fuzz
step "unit tests (native)"           quiet_gtest build/native/rill_tests
step "unit tests (ASan+UBSan)"       quiet_gtest build/asan/rill_tests
step "unit tests (wasm SIMD128, Node 24)"     quiet_gtest "$NODE" build/wasm-simd/rill_tests.js
step "unit tests (wasm relaxed SIMD, Node 24)" quiet_gtest "$NODE" build/wasm-relaxed/rill_tests.js
step "cli"                 tests/cli_test.sh build/native/rill
step "tokenizer vs llama.cpp ($DIFF_STRINGS strings per vocabulary)" \
     bash -c "'$NODE' tests/oracle/tokenizer_diff.mjs --count $DIFF_STRINGS 2>&1 | grep -v '^\[node-llama-cpp\]'"
step "chat templates vs @huggingface/jinja" "$NODE" tests/js/chat_template_test.mjs
step "npm package (Node 24, relaxed SIMD and SIMD128)" "$NODE" tests/js/node_test.mjs
step "npm package in headless Chromium (Web Worker, COOP/COEP)" "$NODE" tests/js/browser_test.mjs
step "forward pass vs llama.cpp (golden: native CLI, npm package in both wasm builds)" \
     bash -c "'$NODE' tests/oracle/golden.mjs --engines cli,relaxed,simd 2>&1 | grep -v '^\[node-llama-cpp\]'"
step "fuzz gguf (${FUZZ_SECONDS}s)"      fuzz fuzz_gguf tests/data/malformed
step "fuzz tokenizer (${FUZZ_SECONDS}s)" fuzz fuzz_tokenizer

echo
for f in "${failures[@]+"${failures[@]}"}"; do echo "failed: $f"; done
echo "rill test steps: $passed passed, $failed failed"
[ "$failed" = 0 ]
