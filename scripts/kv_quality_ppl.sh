#!/usr/bin/env bash
# scripts/kv_quality_ppl.sh — perplexity and KL-divergence vs f16 KV for every KV type on a model and
# text (defaults: the refmodel and its eval text, llama.cpp's chunk counts). One JSON line per run.
# Usage: scripts/kv_quality_ppl.sh OUT.jsonl [MODEL] [TEXT] [CTX] [CHUNKS] [extra kvant ppl args...]
set -euo pipefail
cd "$(dirname "$0")/.."
out="$1"; model="${2:-../shared/data/refmodel/refmodel-f16.gguf}"; text="${3:-../shared/data/refmodel/eval.txt}"
ctx="${4:-512}"; chunks="${5:-200}"; shift $(( $# < 5 ? $# : 5 )); extra=("$@")
kvant="${KVANT:-build/kvant}"
base=$(mktemp /tmp/kvant-klbase-XXXXXX)
trap 'rm -f "$base"' EXIT
run() {  # label, then kvant ppl flags
  local label="$1"; shift
  local json
  json=$("$kvant" ppl -m "$model" -f "$text" -c "$ctx" --chunks "$chunks" --json "${extra[@]}" "$@" 2>/dev/null)
  echo "{\"label\": \"$label\", \"model\": \"$(basename "$model")\", \"result\": $json}" | tee -a "$out"
}
run "f16" -ctk f16 -ctv f16 --kl-base-save "$base"
for t in q8_0 q4_0; do
  run "$t rotated" -ctk $t -ctv $t --kv-rotate on --kv-window 0 --kl-base "$base"
  run "$t unrotated" -ctk $t -ctv $t --kv-rotate off --kv-window 0 --kl-base "$base"
done
for b in 2 3 4 5; do
  run "turbo_kv_${b}b" -ctk turbo_kv_${b}b -ctv turbo_kv_${b}b --kv-window 0 --kl-base "$base"
done
for b in 3 4; do
  run "turbo_kv_${b}b window 128" -ctk turbo_kv_${b}b -ctv turbo_kv_${b}b --kv-window 128 --kl-base "$base"
done
run "K turbo_kv_4b, V turbo_kv_3b" -ctk turbo_kv_4b -ctv turbo_kv_3b --kv-window 0 --kl-base "$base"
run "K q8_0, V turbo_kv_4b" -ctk q8_0 -ctv turbo_kv_4b --kv-window 0 --kl-base "$base"
