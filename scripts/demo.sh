#!/usr/bin/env bash
# The front door: set up, build the engine, and chat with a model through the npm package in
# Node (download progress, the model cache, tok/s after each reply).
#   scripts/demo.sh [MODEL.gguf | URL] [rill-llm options, e.g. -n 256 --temp 0.7 --think]
# Without a model it makes the benchmark's Qwen3.5-0.8B shape (random weights: it runs at the
# real model's speed, and its replies are noise).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
for preset in native wasm-relaxed wasm-simd; do
  cmake --preset "$preset" >/dev/null
done
cmake --build --preset native --target rill
cmake --build --preset wasm-relaxed --target rill_engine
cmake --build --preset wasm-simd --target rill_engine
NODE=node_modules/.bin/node
MODEL=${1:-}
if [ -z "$MODEL" ] || [[ "$MODEL" == -* ]]; then
  "$NODE" -e "import('./bench/models.mjs').then((m) => m.ensureModels(['qwen35-0.8b']))"
  MODEL=bench/models/qwen35-0.8b.gguf
  echo
  echo "demo: no model given, so this is $MODEL: Qwen3.5-0.8B's shape and file layout with RANDOM weights."
  echo "demo: it runs at the real model's speed, but its replies are noise. Give a real file or URL:"
  echo "demo:   scripts/demo.sh Qwen3.5-0.8B-Q4_0.gguf   or   scripts/demo.sh https://.../model.gguf"
  echo
else
  shift
fi
exec "$NODE" bindings/js/cli.js chat "$MODEL" "$@"
