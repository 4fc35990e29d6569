#!/usr/bin/env bash
# Installs everything Rill needs from Debian packages and the npm registry.
# Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(cmake ninja-build python3 git g++ clang-19 lld-19 llvm-19 libclang-rt-19-dev emscripten
      googletest libgtest-dev nlohmann-json3-dev unicode-data chromium)
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Any Node with npm bootstraps; the machine image's Node comes with npm, Debian's does not.
if ! command -v npm >/dev/null; then
  DEBIAN_FRONTEND=noninteractive ${SUDO:-} apt-get install -y -qq nodejs npm >/dev/null
fi

# Node 24 (relaxed SIMD without flags) and the llama.cpp oracle, pinned in package.json.
if [ ! -x node_modules/.bin/node ] || [ ! -d node_modules/node-llama-cpp ] ||
   [ package.json -nt node_modules/.rill-installed ]; then
  echo "setup: npm install"
  npm install --no-audit --no-fund --loglevel=error
  touch node_modules/.rill-installed
fi

# llama.cpp's source and tokenizer test vectors ship inside node-llama-cpp as a git bundle.
if [ ! -f .cache/llama.cpp/models/ggml-vocab-qwen35.gguf ]; then
  echo "setup: unpacking llama.cpp reference bundle into .cache/llama.cpp"
  rm -rf .cache/llama.cpp
  mkdir -p .cache
  git clone -q node_modules/node-llama-cpp/llama/gitRelease.bundle .cache/llama.cpp 2>/dev/null
fi
# The golden's oracle runs one ggml CPU variant on every host: node-llama-cpp's prebuilt llama.cpp
# comes with one libggml-cpu-*.so per x86 level (haswell, zen4, skylakex, ...) and loads the best one
# the CPU supports, and their float sum orders differ. .cache/llama-oracle/bins holds the prebuilt
# libraries with only the haswell CPU variant (which every x86-64 CPU with AVX2+FMA runs), and
# tests/oracle/llama_logits.cpp, built against them and the bundled headers, drives llama.cpp from there
# (llama_embed.cpp: its embeddings, for the embeddings test).
ORACLE=.cache/llama-oracle
BINS=node_modules/@node-llama-cpp/linux-x64/bins/linux-x64
if [ "$(uname -m)" = x86_64 ] && { [ ! -x $ORACLE/llama_logits ] || [ node_modules/.rill-installed -nt $ORACLE/llama_logits ] ||
                                   [ tests/oracle/llama_logits.cpp -nt $ORACLE/llama_logits ] ||
                                   [ tests/oracle/llama_embed.cpp -nt $ORACLE/llama_embed ] || [ tests/oracle/oracle_common.h -nt $ORACLE/llama_embed ]; }; then
  echo "setup: the golden's oracle: llama.cpp with ggml's haswell CPU variant only, in $ORACLE"
  rm -rf $ORACLE
  mkdir -p $ORACLE/bins
  cp -a $BINS/. $ORACLE/bins/
  find $ORACLE/bins -name 'libggml-cpu-*.so' ! -name libggml-cpu-haswell.so -delete
  [ -f $ORACLE/bins/libggml-cpu-haswell.so ] || { echo "setup: node-llama-cpp has no haswell ggml CPU library"; exit 1; }
  libs=$(cd $ORACLE/bins && ls libllama.v*.so libggml.v*.so libggml-base.so | sed 's/^/-l:/')
  g++ -O2 -std=c++17 -Wall -Wextra -I.cache/llama.cpp/include -I.cache/llama.cpp/ggml/include -I.cache/llama.cpp/src tests/oracle/llama_logits.cpp \
      -o $ORACLE/llama_logits -L$ORACLE/bins $libs -Wl,-rpath,"$PWD/$ORACLE/bins"
  g++ -O2 -std=c++17 -Wall -Wextra -I.cache/llama.cpp/include -I.cache/llama.cpp/ggml/include tests/oracle/llama_embed.cpp \
      -o $ORACLE/llama_embed -L$ORACLE/bins $libs -Wl,-rpath,"$PWD/$ORACLE/bins"
fi
echo "setup: ok ($(node_modules/.bin/node --version), $(emcc --version 2>/dev/null | head -1 | cut -c1-40))"
