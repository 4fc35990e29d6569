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
# synth / generate / logits, and their errors
M="$tmp/tiny.gguf"
check synth 0 "" -- "$RILL" synth --arch qwen35 --vocab $V/ggml-vocab-qwen35.gguf --out "$M" --type q8_0 --tied \
  --set embedding_length=64 --set feed_forward_length=128 --set attention.head_count=2 --set attention.head_count_kv=1 \
  --set attention.key_length=32 --set attention.value_length=32 --set ssm.state_size=32 --set ssm.group_count=1 \
  --set ssm.time_step_rank=2 --set ssm.inner_size=64
check inspect-synth 0 "recurrent" -- bash -c "'$RILL' inspect '$M' | grep -c full_attention_interval >/dev/null && echo recurrent"
check generate-json 0 '"prompt_tokens":[9707,1879]' -- "$RILL" generate -m "$M" -p "Hello world" -n 4 --temp 0 --json
check generate-deterministic 0 "same" -- bash -c "a=\$('$RILL' generate -m '$M' -p Hi -n 8 --temp 0.9 --seed 5 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"tokens\"])'); b=\$('$RILL' generate -m '$M' -p Hi -n 8 --temp 0.9 --seed 5 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"tokens\"])'); [ \"\$a\" = \"\$b\" ] && echo same"
check logits 0 '"n_vocab":151936' -- bash -c "'$RILL' logits -m '$M' -p 'Hello' -n 3 --out '$tmp/l.bin' && cat '$tmp/l.bin.json' && test \$(stat -c %s '$tmp/l.bin') = \$((3 * 151936 * 4))"
check prompt-too-long 1 "longer than the context of 8 tokens" -- "$RILL" generate -m "$M" -p "one two three four five six seven eight nine ten" -c 8 -n 2
check unknown-arch 1 "synth: unsupported architecture 'mamba'" -- "$RILL" synth --arch mamba --vocab $V/ggml-vocab-qwen35.gguf --out "$tmp/x.gguf"
check bad-type 1 "not a multiple of the q4_K block size 256" -- "$RILL" synth --arch llama --vocab $V/ggml-vocab-llama-spm.gguf --out "$tmp/x.gguf" --type q4_K --set embedding_length=64
check missing-tensor 1 "missing tensor 'token_embd.weight'" -- "$RILL" generate -m $V/ggml-vocab-qwen35.gguf -p hi
E="$tmp/embed.gguf"
check synth-embed 0 "" -- "$RILL" synth --arch qwen3 --vocab $V/ggml-vocab-qwen35.gguf --out "$E" --type q8_0 --tied \
  --set embedding_length=64 --set feed_forward_length=128 --set attention.head_count=2 --set attention.head_count_kv=1 --set pooling_type=3
check embed-shape 0 "2 64 1.0000" -- bash -c "'$RILL' embed -m '$E' 'one river' 'two rivers, three' | python3 -c 'import json,sys; v=[json.loads(l) for l in sys.stdin]; print(len(v), len(v[0]), \"%.4f\" % sum(x*x for x in v[1]))'"
check embed-packed-as-alone 0 "same" -- bash -c "a=\$('$RILL' embed -m '$E' 'one river' 'two rivers, three' | tail -1); b=\$('$RILL' embed -m '$E' 'two rivers, three'); [ \"\$a\" = \"\$b\" ] && echo same"
check embed-lines 0 "same" -- bash -c "a=\$(printf '\"one river\"\\n\"two rivers, three\"\\n' | '$RILL' embed -m '$E' --lines --batch 1); b=\$('$RILL' embed -m '$E' 'one river' 'two rivers, three'); [ \"\$a\" = \"\$b\" ] && echo same"
check embed-bad-pooling 1 "pooling must be 'mean', 'cls' or 'last', got 'max'" -- "$RILL" embed -m "$E" --pooling max x
check embed-too-long 1 "text 0 (" -- "$RILL" embed -m "$E" -c 4 "one two three four five six"
echo "cli: $pass passed, $fail failed"
[ "$fail" = 0 ]
