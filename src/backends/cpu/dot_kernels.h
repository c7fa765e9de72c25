// backends/cpu/dot_kernels.h — picks the fastest weight·activation dot kernel the CPU supports, once:
// AVX-512 VNNI (dot_kernels_avx512.cpp), else AVX2/FMA/F16C (dot_kernels_avx2.cpp), else the scalar
// QuantTraits::vec_dot.
#pragma once

#include <cstddef>
#include <cstdint>

#include "quant/ggml_type.h"

namespace kvant {

// Dot of one weight row (n elements, weight format) with n activations in the format's vec_dot_type.
using VecDotFn = float (*)(int64_t n, const void* w, const void* a);
// Four dots sharing one weight row: out[k] = dot(n, w, a + k * a_stride) for k = 0..3 (a_stride in
// bytes). Each out[k] equals the matching VecDotFn result exactly (same summation order).
using VecDotX4Fn = void (*)(int64_t n, const void* w, const void* a, size_t a_stride, float* out);

enum class CpuIsa { Scalar, Avx2, Avx512 };

// True when the CPU runs AVX2, FMA and F16C (checked once).
bool cpu_has_avx2();
// True when the CPU runs AVX-512 F/BW/VL/DQ + VNNI as well as AVX2/FMA/F16C (checked once).
bool cpu_has_avx512_vnni();

// Upper bound on the instruction sets of kvant's weight kernels (decode dots, prefill GEMM, AMX tiles):
// the environment variable KVANT_MAX_ISA (scalar, avx2, avx512 or amx; unset = whatever the CPU has),
// for side-by-side comparisons and as a workaround. Read once; an unknown value is reported on stderr and ignored.
enum class IsaLimit { Scalar, Avx2, Avx512, Amx, None };
IsaLimit isa_limit();

// The kernel for weight_type on the given ISA; nullptr when that ISA has no kernel for the type, the
// CPU lacks the ISA, or the type is not a weight format. Used by tests to compare ISAs.
VecDotFn vec_dot_for_isa(GgmlType weight_type, CpuIsa isa);
// The 1x4 kernel for weight_type on the given ISA, or nullptr (as vec_dot_for_isa).
VecDotX4Fn vec_dot_x4_for_isa(GgmlType weight_type, CpuIsa isa);

// Fastest available kernel: AVX-512, else AVX2, for the first ISA the CPU has (and isa_limit allows)
// with a kernel for the type, else scalar. nullptr only for types that are not weight formats.
VecDotFn best_vec_dot(GgmlType weight_type);
// Fastest 1x4 kernel (AVX2 only), or nullptr when there is none (callers then use best_vec_dot per row).
VecDotX4Fn best_vec_dot_x4(GgmlType weight_type);

namespace avx2 {
// Defined in dot_kernels_avx2.cpp; call only when cpu_has_avx2(). nullptr for types without a kernel.
VecDotFn vec_dot(GgmlType weight_type);
VecDotX4Fn vec_dot_x4(GgmlType weight_type);
}  // namespace avx2

namespace avx512 {
// Defined in dot_kernels_avx512.cpp; call only when cpu_has_avx512_vnni(). nullptr for types without
// a kernel (only Q4_K, Q6_K, Q8_0 and Q4_0 have one).
VecDotFn vec_dot(GgmlType weight_type);
}  // namespace avx512

}  // namespace kvant
