#!/usr/bin/env bash
# The main job at this stage: set up, build the native CLI, then inspect and tokenize
# with the Qwen 3.5 vocabulary that ships inside the oracle package.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset native >/dev/null
cmake --build --preset native --target rill
VOCAB=.cache/llama.cpp/models/ggml-vocab-qwen35.gguf
TEXT=${1:-"<|im_start|>user
Hello, Rill! Ünïcödé, emoji 🦙 and code: x += 42;<|im_end|>"}
echo; echo "\$ rill inspect $VOCAB"
build/native/rill inspect "$VOCAB" | sed -n '1,/^tensors:/p' | grep -v "^  tokenizer.chat_template" | head -40
echo; echo "\$ rill tokenize -m $VOCAB --json '<text>'"
IDS=$(build/native/rill tokenize -m "$VOCAB" --json "$TEXT")
echo "$IDS"
echo; echo "\$ rill detokenize -m $VOCAB --special <ids>"
build/native/rill detokenize -m "$VOCAB" --special $(echo "$IDS" | tr -d '[]' | tr ',' ' ')
echo
