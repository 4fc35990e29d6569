#!/usr/bin/env bash
# The one test command: sets up, builds every configuration and runs every test.
#   scripts/test.sh            default suite (well under 30 minutes on 2 cores)
#   RILL_HEAVY=1 scripts/test.sh   longer fuzzing, more differential strings, a 2.5 GB model
#   RILL_STEPS=REGEX scripts/test.sh   only the steps whose names match (builds are not run then)
#   RILL_GOLDEN_ARGS / RILL_TOKENIZER_ARGS   extra arguments for those two steps
# Every step's status is its test's own exit status: output filters never stand between them.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
NODE=$ROOT/node_modules/.bin/node
FUZZ_SECONDS=${RILL_FUZZ_SECONDS:-60}
DIFF_STRINGS=${RILL_DIFF_STRINGS:-5000}
if [ "${RILL_HEAVY:-0}" = 1 ]; then FUZZ_SECONDS=600; DIFF_STRINGS=50000; fi

STEPS=${RILL_STEPS:-}
[ "${RILL_SKIP_SETUP:-0}" = 1 ] || bash scripts/setup.sh || { echo "setup failed"; exit 1; }

passed=0 failed=0 failures=()
step() {  # step NAME COMMAND...: runs a step, records the outcome
  local name=$1; shift
  if [ -n "$STEPS" ] && ! [[ $name =~ $STEPS ]]; then return 0; fi
  local t0=$SECONDS
  echo "=== $name"
  if "$@"; then
    passed=$((passed + 1)); echo "--- ok: $name ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1)); failures+=("$name"); echo "--- FAILED: $name ($((SECONDS - t0)) s)"
  fi
}
build() { cmake --preset "$1" >/dev/null && cmake --build --preset "$1"; }
without_oracle_logs() {  # runs a command, hiding node-llama-cpp's log lines; returns the command's status
  "$@" 2>&1 | grep -v '^\[node-llama-cpp\]'
  return "${PIPESTATUS[0]}"
}
fails_as_it_should() {  # the test command itself, on a golden row and a tokenizer string made to fail
  local log; log=$(mktemp)
  RILL_SKIP_SETUP=1 RILL_STEPS='^(forward pass|tokenizer vs)' RILL_DIFF_STRINGS=20 \
    RILL_GOLDEN_ARGS='--config {"name":"self-check","arch":"qwen35","vocab":"qwen35","synth":["--tied","--type","q8_0","--set","block_count=2","--set","full_attention_interval=2"],"tol":0.005} --prompts [["s","Hi"]] --steps 2 --engines cli --inject-failure' \
    RILL_TOKENIZER_ARGS="--vocab qwen35 --inject-failure" bash scripts/test.sh >"$log" 2>&1
  local rc=$?
  grep -E "^(FAIL|golden:|tokenizer-diff:|failed:|steps:)" "$log" | sed 's/^/    /'
  local ok=1
  [ $rc -ne 0 ] || { echo "the test command exited 0 although its tests failed"; ok=0; }
  grep -q "^golden: 1 passed, 1 failed" "$log" || { echo "the golden did not report the injected failure"; ok=0; }
  grep -qE "^tokenizer-diff: [0-9]+ passed, [1-9][0-9]* failed" "$log" || { echo "the tokenizer test did not report the injected failure"; ok=0; }
  grep -q "^steps: 0 passed, 2 failed" "$log" || { echo "the failing steps were not both counted as failed"; ok=0; }
  rm -f "$log"
  [ $ok = 1 ]
}
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

# Extra arguments, split on white space only (no globbing: they may hold JSON). The golden's come
# first, so that an option given there wins over the default after it; the tokenizer's last
# (its --vocab takes the rest of the line).
read -ra GOLDEN_ARGS <<<"${RILL_GOLDEN_ARGS:-}"
read -ra TOKENIZER_ARGS <<<"${RILL_TOKENIZER_ARGS:-}"
export RILL_SOURCE_DIR=$ROOT RILL_VOCAB_DIR=$ROOT/.cache/llama.cpp/models
if [ -z "$STEPS" ]; then
  step "build native"        build native
  step "build asan"          build asan
  step "build wasm-simd"     build wasm-simd
  step "build wasm-relaxed"  build wasm-relaxed
  step "build fuzz"          build fuzz
  step "build mutant"        build mutant
fi
step "a failing test fails its step and the suite" fails_as_it_should
step "unit tests (native)"           quiet_gtest build/native/rill_tests
step "unit tests (ASan+UBSan)"       quiet_gtest build/asan/rill_tests
step "unit tests (wasm SIMD128, Node 24)"     quiet_gtest "$NODE" build/wasm-simd/rill_tests.js
step "unit tests (wasm relaxed SIMD, Node 24)" quiet_gtest "$NODE" build/wasm-relaxed/rill_tests.js
step "cli"                 tests/cli_test.sh build/native/rill
step "tokenizer vs llama.cpp ($DIFF_STRINGS strings per vocabulary)" \
     without_oracle_logs "$NODE" tests/oracle/tokenizer_diff.mjs --count "$DIFF_STRINGS" "${TOKENIZER_ARGS[@]}"
step "chat templates vs @huggingface/jinja" "$NODE" tests/js/chat_template_test.mjs
step "npm package (Node 24, relaxed SIMD and SIMD128)" "$NODE" tests/js/node_test.mjs
step "structured output: 35 JSON Schemas validated by ajv, GBNF grammars, refusals (Node 24, both builds)" "$NODE" tests/js/structured_test.mjs
step "tool calls and the OpenAI-shaped API (chat.completions.create, streaming, logprobs, logit_bias)" "$NODE" tests/js/openai_test.mjs
step "embeddings vs llama.cpp (last, mean, CLS pooling; F32, Q8_0) and embeddings.create" "$NODE" tests/js/embed_test.mjs
step "npm package in headless Chromium (Web Worker, COOP/COEP)" "$NODE" tests/js/browser_test.mjs
step "model loading: the cache (Node directory, Chromium OPFS and Cache API) and split files" "$NODE" tests/js/load_test.mjs
step "npm command line (npx rill-llm run/chat/cache, Ctrl-C)" "$NODE" tests/js/cli_npm_test.mjs
if [ "${RILL_HEAVY:-0}" = 1 ]; then
  step "a 2.5 GB model in Node and Chromium (heavy)" "$NODE" tests/js/large_model_test.mjs
fi
step "dev server serves only the page, the package and the models" "$NODE" tests/js/serve_test.mjs
step "the chat page in headless Chromium (phone and desktop: load, cache, reply, delete; screenshots)" "$NODE" tests/js/web_test.mjs
step "forward pass vs llama.cpp (golden: native CLI, npm package in both wasm builds)" \
     without_oracle_logs "$NODE" tests/oracle/golden.mjs "${GOLDEN_ARGS[@]}" --engines cli,relaxed,simd
step "the golden fails on each deliberate error (mutation test: rope angle, weight row, decay position, Q4_K scale)" \
     without_oracle_logs "$NODE" tests/oracle/golden.mjs --mutants all --steps 8
step "fuzz gguf (${FUZZ_SECONDS}s)"      fuzz fuzz_gguf tests/data/malformed
step "fuzz tokenizer (${FUZZ_SECONDS}s)" fuzz fuzz_tokenizer

echo
for f in "${failures[@]+"${failures[@]}"}"; do echo "failed: $f"; done
echo "steps: $passed passed, $failed failed"
[ "$failed" = 0 ]
