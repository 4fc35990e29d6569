#!/usr/bin/env bash
# Installs everything Rill needs from Debian packages and the npm registry.
# Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(cmake ninja-build python3 git clang-19 lld-19 libclang-rt-19-dev emscripten
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
# The golden's oracle runs one ggml CPU variant on every host: node-llama-cpp loads the best
# libggml-cpu-*.so the CPU supports (haswell on AVX2 machines, zen4/skylakex/... with AVX-512), and
# their float sum orders differ. A private copy of the package whose binary folder holds only the
# haswell library (which every x86-64 CPU with AVX2+FMA runs) pins it; the installed package is untouched.
PIN=.cache/llama-oracle/node_modules
if [ "$(uname -m)" = x86_64 ] && { [ ! -f $PIN/.pinned ] || [ node_modules/.rill-installed -nt $PIN/.pinned ]; }; then
  echo "setup: pinning the golden oracle to ggml's haswell CPU variant in $PIN"
  rm -rf .cache/llama-oracle
  mkdir -p $PIN/@node-llama-cpp
  for pkg in node-llama-cpp @node-llama-cpp/linux-x64; do  # hard links where the file system allows
    cp -al node_modules/$pkg $PIN/$pkg 2>/dev/null || { rm -rf $PIN/$pkg; cp -a node_modules/$pkg $PIN/$pkg; }
  done
  find $PIN/@node-llama-cpp/linux-x64/bins -name 'libggml-cpu-*.so' ! -name libggml-cpu-haswell.so -delete
  [ -f $PIN/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-cpu-haswell.so ] || { echo "setup: node-llama-cpp has no haswell ggml CPU library"; exit 1; }
  touch $PIN/.pinned
fi
echo "setup: ok ($(node_modules/.bin/node --version), $(emcc --version 2>/dev/null | head -1 | cut -c1-40))"
