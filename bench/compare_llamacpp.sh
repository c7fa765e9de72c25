#!/usr/bin/env bash
# bench/compare_llamacpp.sh — kvant bench and llama.cpp's llama-bench on the same models, run back to
# back in one script (same machine state), with kvant/llama.cpp ratios. llama.cpp is NOT built here:
# pass the directory holding an existing llama-bench binary.
# Usage: bench/compare_llamacpp.sh LLAMA_BIN_DIR THREADS REPS MODEL...
set -euo pipefail
cd "$(dirname "$0")/.."
llama_bin="$1"; threads="$2"; reps="$3"; shift 3
kvant="${KVANT:-build/kvant}"
printf '| model | test | kvant t/s | llama.cpp t/s | ratio |\n|---|---|---|---|---|\n'
for model in "$@"; do
  k=$("$kvant" bench -m "$model" -p 512 -n 128 -t "$threads" -r "$reps" -o json 2>/dev/null)
  l=$("$llama_bin/llama-bench" -m "$model" -p 512 -n 128 -t "$threads" -r "$reps" -o json 2>/dev/null)
  python3 - "$model" "$k" "$l" <<'PY'
import json, sys, os
model, k, l = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
kv = {r["test"]: r for r in k}
for r in l:
    test = f"pp{r['n_prompt']}" if r["n_prompt"] else f"tg{r['n_gen']}"
    mine = kv[test]
    ratio = mine["tps_mean"] / r["avg_ts"]
    print(f"| {os.path.basename(model)} | {test} | {mine['tps_mean']:.1f} ± {mine['tps_sd']:.1f} | "
          f"{r['avg_ts']:.1f} ± {r['stddev_ts']:.1f} | {ratio:.2f} |")
PY
done
