#!/usr/bin/env bash
# scripts/cuda_ab.sh — one GPU-machine run that compares decode rows side by side: this tree's build against
# another source tree's build (BASE) and/or against its own A/B switches (AB_ENV), rows alternating per round.
# Usage: [BASE=dir] [AB_ENV="KVANT_CUDA_X=0 KVANT_CUDA_Y=0"] [ROUNDS=2] [ROWS="1B@0 8B@0 8B@32K 1B@128K"]
#        [TESTS=1] [JOBS=N] scripts/cuda_ab.sh
#   BASE: a source tree to build as "base" (e.g. `git archive <commit> | tar -x -C .dbg/base`, carried).
#   AB_ENV: each assignment is one more variant, the new build run with that variable set.
#   ROWS: model@depth with model 1B (llama-3.2-1b Q8_0) or 8B (llama-3.1-8b Q4_K_M) and depth 0, 8K, 32K or
#         128K; depth rows use turbo_kv_4b K and V, depth 0 the default f16 KV.
# Needs .devdata/stories260K.gguf (the vocabulary; carried). Logs and rows.txt go to $OUT (or /tmp/kvant_ab).
set -uo pipefail
out=${OUT:-/tmp/kvant_ab}
mkdir -p "$out"
rounds=${ROUNDS:-2}
rows=${ROWS:-"1B@0 8B@0 8B@32K 1B@128K"}
vocab=.devdata/stories260K.gguf
cmake_args=${CMAKE_ARGS:-"-DKVANT_CUDA=ON -DKVANT_NATIVE=ON"}
backend=${BACKEND:-cuda}
start=$(date +%s)
elapsed() { echo "$(($(date +%s) - start)) s"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | tee "$out/card.txt"

# Builds: both in parallel when there is a base; the new one also builds the device tests.
cores=$(nproc)
jobs_new=${JOBS:-$cores}
[[ -n ${BASE:-} ]] && jobs_new=$((cores * 5 / 8 > 1 ? cores * 5 / 8 : 1))
build() {  # source-dir jobs targets...
  local src=$1 jobs=$2
  shift 2
  cmake -S "$src" -B "$src/build-gpu" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKVANT_BUILD_TESTS=OFF $cmake_args &&
    ninja -C "$src/build-gpu" -j"$jobs" "$@"
}
tests=()
[[ ${TESTS:-1} == 1 && $backend == cuda ]] && tests=(test_cuda_ops test_cuda_e2e)
build . "$jobs_new" kvant_cli "${tests[@]}" >"$out/build_new.log" 2>&1 &
pid_new=$!
pid_base=
if [[ -n ${BASE:-} ]]; then
  build "$BASE" $((cores - jobs_new > 1 ? cores - jobs_new : 1)) kvant_cli >"$out/build_base.log" 2>&1 &
  pid_base=$!
fi
wait $pid_new || { echo "new build failed:"; grep -E "error|FAILED" "$out/build_new.log" | head -20; exit 1; }
echo "new build done: $(elapsed)"
if [[ -n $pid_base ]]; then
  wait $pid_base || { echo "base build failed:"; grep -E "error|FAILED" "$out/build_base.log" | head -20; exit 1; }
  echo "base build done: $(elapsed)"
fi

kv=./build-gpu/kvant
declare -A model_path=([1B]=/tmp/kvant_ab_1b.gguf [8B]=/tmp/kvant_ab_8b.gguf)
declare -A model_args=([1B]="--shape llama-3.2-1b --type q8_0" [8B]="--shape llama-3.1-8b --type q4_k_m")
for m in 1B 8B; do
  [[ " $rows " == *" $m@"* ]] || continue
  [[ -f ${model_path[$m]} ]] ||
    $kv synth ${model_args[$m]} --vocab $vocab -o "${model_path[$m]}" >"$out/synth_$m.log" 2>&1 ||
    { echo "synth $m failed:"; tail -3 "$out/synth_$m.log"; exit 1; }
done
echo "models ready: $(elapsed)"

for t in "${tests[@]}"; do
  KVANT_STORIES=$vocab ./build-gpu/$t >"$out/$t.log" 2>&1
  echo "$t: rc $? — $(tail -n 1 "$out/$t.log")"
  grep -E "FAIL" "$out/$t.log" | head -5
done

# Variants: label, binary, environment.
labels=(new)
bins=("$kv")
envs=("")
if [[ -n ${BASE:-} ]]; then
  labels+=(base)
  bins+=("$BASE/build-gpu/kvant")
  envs+=("")
fi
for e in ${AB_ENV:-}; do
  labels+=("$e")
  bins+=("$kv")
  envs+=("$e")
done

row_args() {  # model@depth → bench arguments
  local m=${1%@*} depth=${1#*@} d
  case $depth in
    0) echo "-m ${model_path[$m]} -p 0 -n 128" && return ;;
    8K) d=8192 ;;
    32K) d=32768 ;;
    128K) d=131072 ;;
    *) echo "unknown depth in row $1" >&2 && return 1 ;;
  esac
  echo "-m ${model_path[$m]} -p 0 -n $([[ $m == 8B ]] && echo 64 || echo 128) -d $d -ctk turbo_kv_4b -ctv turbo_kv_4b"
}

# One bench per row, variant and round; the t/s, GB/s and roofline columns of its tg line.
: >"$out/rows.txt"
for round in $(seq 1 "$rounds"); do
  for r in $rows; do
    args=$(row_args "$r") || exit 1
    for i in "${!labels[@]}"; do
      line=$(env ${envs[$i]} "${bins[$i]}" bench --backend "$backend" $args -r 1 2>&1 | grep -E "^\| .*tg" | tail -1)
      # | model | size | backend | threads | ctk | ctv | test | t/s ± sd | ms/tok | GB/s | roof % |
      vals=$(echo "$line" | awk -F'|' '{sub(/±.*/, "", $9); gsub(/ /, "", $9); gsub(/ /, "", $11); gsub(/ /, "", $12);
                                         print $9, $11, $12}')
      echo "$round $r ${labels[$i]} $vals" | tee -a "$out/rows.txt"
    done
  done
done
echo "rows done: $(elapsed)"

# Mean t/s per row and variant, and each variant's ratio to the new build.
echo
echo "| row | variant | rounds | mean t/s | / new |"
echo "|---|---|---|---|---|"
awk '{ key = $2 " " $3; sum[key] += $4; n[key]++; if (!(key in first)) { order[++k] = key; first[key] = 1 } }
     END { for (i = 1; i <= k; ++i) { split(order[i], p, " "); m = sum[order[i]] / n[order[i]];
             ref = sum[p[1] " new"] / n[p[1] " new"];
             printf "| %s | %s | %d | %.2f | %.4f |\n", p[1], p[2], n[order[i]], m, m / ref } }' "$out/rows.txt"
