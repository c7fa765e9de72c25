#!/usr/bin/env bash
# scripts/cuda_check.sh — one GPU-machine session for the CUDA backend: build, device tests (ops vs CPU,
# end-to-end logits), synthetic models, and decode benchmarks CPU vs CUDA. Logs go to $OUT (or
# /tmp/kvant_cuda_out); a short table is printed last. Needs .devdata/stories260K.gguf (carried).
# Usage: scripts/cuda_check.sh [tests|bench|probe|all] (default all). KVANT_8B=0 skips the 8B model.
# probe: host CPU facts, a CPU thread sweep and per-kernel GPU times of a few decode tokens (ncu).
# cpu: kvant vs an existing llama.cpp build (directory in LLAMA_BIN; not built here) on the host CPU.
set -uo pipefail
mode=${1:-all}
out=${OUT:-/tmp/kvant_cuda_out}
mkdir -p "$out"
vocab=.devdata/stories260K.gguf
build=build-gpu
jobs=$(nproc)
summary=()
note() { summary+=("$1"); echo "== $1"; }

card=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)
echo "$card"
start=$(date +%s)
cmake -S . -B $build -G Ninja -DCMAKE_BUILD_TYPE=Release -DKVANT_BUILD_TESTS=OFF -DKVANT_CUDA=ON \
  -DKVANT_NATIVE=ON >/tmp/cmake.log 2>&1 || { tail -20 /tmp/cmake.log; exit 1; }
ninja -C $build -j"$jobs" kvant test_cuda_ops test_cuda_e2e test_cuda_matvec test_cuda_matmul_tc >/tmp/build.log 2>&1 || { grep -E "error|FAILED" /tmp/build.log | head -20; exit 1; }
ninja -C $build -j"$jobs" kvant_cli >>/tmp/build.log 2>&1 && have_cli=1 || { have_cli=0; note "kvant CLI did not build (see build.log)"; grep -E "error" /tmp/build.log | head -5; }
note "build: $(( $(date +%s) - start )) s"

if [[ $mode == tests || $mode == all ]]; then
  ./$build/test_cuda_ops >"$out/test_ops.log" 2>&1
  grep -E "FAIL|passed|checked|device|SKIP|bench" "$out/test_ops.log" | head -60
  note "test_cuda_ops: $(tail -1 "$out/test_ops.log")"
  # turbo_kv_4b K and V at d = 64 / 128 on the CUDA-core loop instead of tensor cores
  KVANT_CUDA_ATTN_MMA=0 ./$build/test_cuda_ops >"$out/test_ops_nomma.log" 2>&1
  note "test_cuda_ops KVANT_CUDA_ATTN_MMA=0: $(tail -1 "$out/test_ops_nomma.log")"
  ./$build/test_cuda_matvec >"$out/test_matvec.log" 2>&1
  grep -E "FAIL|GB/s" "$out/test_matvec.log" | head -20
  note "test_cuda_matvec: $(tail -1 "$out/test_matvec.log")"
  for split in 0 1; do  # the int8 kernel with rows dealt row by row / tile by tile everywhere
    KVANT_CUDA_MATVEC_SPLIT=$split ./$build/test_cuda_matvec >"$out/test_matvec_split$split.log" 2>&1
    note "test_cuda_matvec KVANT_CUDA_MATVEC_SPLIT=$split: $(tail -1 "$out/test_matvec_split$split.log")"
  done
  KVANT_CUDA_MATVEC_WIDE=0 ./$build/test_cuda_matvec >"$out/test_matvec_narrow.log" 2>&1
  note "test_cuda_matvec KVANT_CUDA_MATVEC_WIDE=0: $(tail -1 "$out/test_matvec_narrow.log")"
  ./$build/test_cuda_matmul_tc >"$out/test_matmul_tc.log" 2>&1
  grep -E "FAIL|TFLOP" "$out/test_matmul_tc.log" | head -10
  note "test_cuda_matmul_tc: $(tail -1 "$out/test_matmul_tc.log")"
  KVANT_STORIES=$vocab ./$build/test_cuda_e2e >"$out/test_e2e.log" 2>&1
  grep -E "FAIL|passed|stories|tiny|SKIP" "$out/test_e2e.log" | grep -v "^FAIL.*logits differ" | head -40
  note "test_cuda_e2e: $(tail -1 "$out/test_e2e.log")"
  KVANT_CUDA_GRAPHS=0 KVANT_STORIES=$vocab ./$build/test_cuda_e2e >"$out/test_e2e_nograph.log" 2>&1
  note "test_cuda_e2e without graphs: $(tail -1 "$out/test_e2e_nograph.log")"
  KVANT_CUDA_FUSE_KV=0 KVANT_STORIES=$vocab ./$build/test_cuda_e2e >"$out/test_e2e_nofuse.log" 2>&1
  note "test_cuda_e2e KVANT_CUDA_FUSE_KV=0: $(tail -1 "$out/test_e2e_nofuse.log")"
  KVANT_CUDA_EVICT_WEIGHTS=0 KVANT_CUDA_EVICT_KV=0 KVANT_CUDA_EARLY_LAUNCH=0 KVANT_CUDA_EARLY_MATVEC=0 \
    KVANT_CUDA_ATTN_PER_HEAD=0 KVANT_STORIES=$vocab \
    ./$build/test_cuda_e2e >"$out/test_e2e_nohints.log" 2>&1
  note "test_cuda_e2e without L2 hints, early launch, per-head attention: $(tail -1 "$out/test_e2e_nohints.log")"
fi

if [[ $mode == cpu ]] && [[ $have_cli == 1 ]] && [[ -n ${LLAMA_BIN:-} ]]; then
  m1=/tmp/llama1b-q8_0.gguf
  [[ -f $m1 ]] || ./$build/kvant synth --shape llama-3.2-1b --type q8_0 --vocab $vocab -o $m1 >/tmp/synth1b.log 2>&1
  LD_LIBRARY_PATH=$LLAMA_BIN KVANT=./$build/kvant bash bench/compare_llamacpp.sh "$LLAMA_BIN" ${KVANT_THREADS:-16} 2 $m1 \
    2>&1 | tee "$out/cpu_vs_llamacpp.md"
  ./$build/kvant bench -m $m1 -p 128 -n 32 -t 1 -r 2 2>&1 | grep -E "^\|" | tee -a "$out/cpu_vs_llamacpp.md"
fi

if [[ $mode == probe ]] && [[ $have_cli == 1 ]]; then
  lscpu | grep -E "Model name|^CPU\(s\)|Thread|Core|Socket|NUMA node|L3" | tee "$out/lscpu.txt"
  grep -o -w -E "avx512f|avx512_vnni|avx512_bf16|amx_tile|amx_int8|avx_vnni" /proc/cpuinfo | sort | uniq -c | tee -a "$out/lscpu.txt"
  kv=./$build/kvant
  m1=/tmp/llama1b-q8_0.gguf
  $kv synth --shape llama-3.2-1b --type q8_0 --vocab $vocab -o $m1 >/tmp/synth1b.log 2>&1 || tail -3 /tmp/synth1b.log
  $kv bench -m $m1 -p 512 -n 64 -t ${KVANT_THREADS:-4,8,16} --backend cpu -r 2 2>&1 | tee "$out/cpu_sweep.md"
  $kv bench -m $m1 -p 512 -n 128 -d 0,32768 -ctk f16,turbo_kv_4b -ctv f16,turbo_kv_4b --backend cuda -r 3 2>&1 | tee "$out/bench1b_cuda.md"
  if command -v ncu >/dev/null; then
    KVANT_CUDA_GRAPHS=0 timeout 300 ncu --metrics gpu__time_duration.sum --csv --launch-skip 300 --launch-count 230 \
      $kv run -m $m1 -p "Once upon a time" -n 8 --temp 0 --backend cuda >"$out/ncu.csv" 2>"$out/ncu.err"
    python3 - "$out/ncu.csv" <<'PY' | tee "$out/ncu_summary.txt"
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
hdr = rows[0]; ki = hdr.index("Kernel Name"); vi = hdr.index("Metric Value"); ui = hdr.index("Metric Unit")
tot = collections.defaultdict(float); cnt = collections.Counter()
for r in rows[1:]:
    v = float(r[vi].replace(",", "")); v *= {"nsecond": 1e-3, "usecond": 1, "msecond": 1e3}.get(r[ui], 1)
    name = r[ki].split("(")[0][:90]; tot[name] += v; cnt[name] += 1
s = sum(tot.values()); n = sum(cnt.values())
print(f"{n} kernels, {s:.1f} us total GPU time ({s / max(1, n):.2f} us each)")
for k, v in sorted(tot.items(), key=lambda kv: -kv[1])[:15]: print(f"{v:9.1f} us {cnt[k]:4d}x {v / cnt[k]:7.2f} us  {k}")
PY
  fi
fi

if [[ $mode == bench || $mode == all ]] && [[ $have_cli == 1 ]]; then
  kv=./$build/kvant
  m1=/tmp/llama1b-q8_0.gguf
  t0=$(date +%s)
  $kv synth --shape llama-3.2-1b --type q8_0 --vocab $vocab -o $m1 >/tmp/synth1b.log 2>&1 || tail -3 /tmp/synth1b.log
  note "synth 1B q8_0: $(( $(date +%s) - t0 )) s"
  ./$build/test_cuda_e2e $m1 2>&1 | grep probe | tee -a /tmp/probe.log
  note "$(grep probe /tmp/probe.log | tail -1)"
  $kv bench -m $m1 -p 512 -n 128 --backend cpu,cuda -r 3 2>&1 | tee "$out/bench1b.md"
  $kv bench -m $m1 -p 0 -n 128 -d 32768 -ctk f16,turbo_kv_4b -ctv f16,turbo_kv_4b --backend cuda -r 3 2>&1 | tee "$out/bench1b_32k.md"
  if [[ ${KVANT_8B:-1} == 1 ]]; then
    m8=/tmp/llama8b-q4_k_m.gguf
    t0=$(date +%s)
    timeout ${KVANT_8B_SYNTH_S:-200} $kv synth --shape llama-3.1-8b --type q4_k_m --vocab $vocab -o $m8 >/tmp/synth8b.log 2>&1 || tail -3 /tmp/synth8b.log
    note "synth 8B q4_k_m: $(( $(date +%s) - t0 )) s"
    ./$build/test_cuda_e2e $m8 2>&1 | grep probe | tee -a /tmp/probe.log
    note "$(grep probe /tmp/probe.log | tail -1)"
    $kv bench -m $m8 -p 0 -n 128 --backend cpu,cuda -r 3 2>&1 | tee "$out/bench8b.md"
  fi
fi

echo
echo "### summary ($card, $(date -u +%F))"
for s in "${summary[@]}"; do echo "- $s"; done
for f in bench1b.md bench1b_32k.md bench8b.md cpu_sweep.md bench1b_cuda.md ncu_summary.txt cpu_vs_llamacpp.md; do [[ -f $out/$f ]] && { echo "--- $f"; grep -E "^\||us" "$out/$f"; }; done
