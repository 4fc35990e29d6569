#!/usr/bin/env bash
# CLI behaviour: outputs, JSON shapes, exit codes and error messages.
# Usage: tests/cli_test.sh path/to/rill
set -u
RILL=${1:-build/native/rill}
V=.cache/llama.cpp/models
pass=0 fail=0
check() {  # check NAME EXPECTED_EXIT EXPECTED_OUTPUT_PART -- COMMAND...
  local name=$1 want_code=$2 want_text=$3; shift 4
  local out code
  out=$("$@" 2>&1); code=$?
  if [ "$code" = "$want_code" ] && [[ "$out" == *"$want_text"* ]]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1)); echo "FAIL $name: exit $code (want $want_code), output: ${out:0:300}"
  fi
}
check inspect-text 0 "pre              \"qwen35\"" -- "$RILL" inspect $V/ggml-vocab-qwen35.gguf
check inspect-json 0 '"n_tokens": 151936' -- "$RILL" inspect --json $V/ggml-vocab-qwen35.gguf
check inspect-json-valid 0 "ok" -- bash -c "'$RILL' inspect --json $V/ggml-vocab-llama-spm.gguf | python3 -c 'import json,sys; json.load(sys.stdin); print(\"ok\")'"
check tokenize-lines 0 $'9707\n1879' -- "$RILL" tokenize -m $V/ggml-vocab-qwen35.gguf "Hello world"
check tokenize-json 0 "[9707,1879]" -- "$RILL" tokenize -m $V/ggml-vocab-qwen35.gguf --json "Hello world"
check tokenize-stdin 0 "[9707,1879]" -- bash -c "printf 'Hello world' | '$RILL' tokenize -m $V/ggml-vocab-qwen35.gguf --json -"
check tokenize-special 0 "[151644,872]" -- "$RILL" tokenize -m $V/ggml-vocab-qwen35.gguf --json "<|im_start|>user"
check tokenize-no-special 0 "[27,91,318,4906,91,29,872]" -- "$RILL" tokenize -m $V/ggml-vocab-qwen35.gguf --json --no-special "<|im_start|>user"
check tokenize-add-bos 0 "[1,15043]" -- "$RILL" tokenize -m $V/ggml-vocab-llama-spm.gguf --json --add-bos "Hello"
check tokenize-no-bos 0 "[15043]" -- "$RILL" tokenize -m $V/ggml-vocab-llama-spm.gguf --json "Hello"
check detokenize 0 "Hello world" -- "$RILL" detokenize -m $V/ggml-vocab-qwen35.gguf 9707 1879
check detokenize-range 1 "token id 999999 is out of range" -- "$RILL" detokenize -m $V/ggml-vocab-qwen35.gguf 999999
check detokenize-not-id 1 "'abc' is not a token id" -- "$RILL" detokenize -m $V/ggml-vocab-qwen35.gguf abc
check missing-file 1 "cannot open '/nonexistent.gguf'" -- "$RILL" inspect /nonexistent.gguf
check malformed 1 "tensor 'blk.3.ssm_a' data ends at byte" -- "$RILL" inspect tests/data/malformed/tensor_data_past_end.gguf
check not-gguf 1 "not a GGUF file" -- "$RILL" tokenize -m tests/data/malformed/EXPECTED.tsv x
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 -c 'import struct,sys; k=b"general.architecture"; v=b"llama"; sys.stdout.buffer.write(b"GGUF"+struct.pack("<IQQ",3,0,1)+struct.pack("<Q",len(k))+k+struct.pack("<IQ",8,len(v))+v)' > "$tmp/no_tok.gguf"
check no-tokenizer 1 "has no tokenizer" -- "$RILL" tokenize -m "$tmp/no_tok.gguf" x
check inspect-no-tokenizer 0 "(unusable: missing metadata key 'tokenizer.ggml.model'" -- "$RILL" inspect "$tmp/no_tok.gguf"
check unknown-command 2 "unknown command 'frobnicate'" -- "$RILL" frobnicate
check unknown-option 1 "unknown option '--bogus'" -- "$RILL" tokenize -m $V/ggml-vocab-qwen35.gguf --bogus x
check no-args 2 "usage:" -- "$RILL"
echo "cli: $pass passed, $fail failed"
[ "$fail" = 0 ]
