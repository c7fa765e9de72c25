#!/usr/bin/env bash
# scripts/ktrace/run.sh — where a decode token's GPU time goes, inside the captured graph: builds the CUPTI
# kernel tracer (ktrace.c), runs one command under it and prints analyze.py's per-kernel table.
# Usage (GPU machine): scripts/ktrace/run.sh OUT.txt COMMAND...
#   e.g. scripts/ktrace/run.sh /tmp/tr_1b.txt build-gpu/kvant bench --backend cuda -m 1b.gguf -p 0 -n 128 -r 1
# CUDA_HOME (default /usr/local/cuda) must hold include/cupti.h and lib64/ or lib/ libcupti.so.
set -euo pipefail
out=$1; shift
cuda=${CUDA_HOME:-/usr/local/cuda}
here=$(cd "$(dirname "$0")" && pwd)
libdir=$cuda/lib64; [[ -e $libdir/libcupti.so ]] || libdir=$cuda/lib
lib=$(mktemp -d)/libktrace.so
gcc -shared -fPIC -O2 -I"$cuda/include" "$here/ktrace.c" -o "$lib" -L"$libdir" -lcupti -Wl,-rpath,"$libdir"
CUDA_INJECTION64_PATH=$lib KTRACE_OUT=$out "$@"
python3 "$here/analyze.py" "$out"
