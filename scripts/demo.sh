#!/usr/bin/env bash
# scripts/demo.sh — build kvant if needed and run the main job: greedy generation with the default
# model (../shared/data/stories260K/stories260K.gguf), or explain how to get a GGUF model.
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-../shared/data/stories260K/stories260K.gguf}"
if [ ! -f "$model" ]; then
  echo "scripts/demo.sh: no model at $model." >&2
  echo "Pass any Llama-family GGUF as the first argument (e.g. a Llama 3.2 1B Q8_0 .gguf from Hugging Face)," >&2
  echo "or make one with random weights: build/kvant synth --shape tiny --type q8_0 --vocab VOCAB.gguf -o tiny.gguf" >&2
  exit 1
fi
if [ ! -x build/kvant ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j"$(nproc 2>/dev/null || echo 2)" --target kvant_cli
fi
build/kvant run -m "$model" -p "Once upon a time" -n 64 --temp 0
echo
