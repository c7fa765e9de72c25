// backends/cpu/dot_kernels.cpp — runtime dispatch between the scalar reference dot kernels
// (QuantTraits::vec_dot), the AVX2 ones and the AVX-512 VNNI ones, decided once from the CPU's flags.
#include "backends/cpu/dot_kernels.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "quant/quant.h"

namespace kvant {

bool cpu_has_avx2() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  }();
  return has;
#else
  return false;
#endif
}

bool cpu_has_avx512_vnni() {
#if defined(__x86_64__)
  static const bool has = [] {
    __builtin_cpu_init();
    return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vnni");
  }();
  return has;
#else
  return false;
#endif
}

IsaLimit isa_limit() {
  static const IsaLimit limit = [] {
    const char* env = std::getenv("KVANT_MAX_ISA");
    if (env == nullptr || env[0] == '\0') return IsaLimit::None;
    const std::string v(env);
    if (v == "scalar") return IsaLimit::Scalar;
    if (v == "avx2") return IsaLimit::Avx2;
    if (v == "avx512") return IsaLimit::Avx512;
    if (v == "amx") return IsaLimit::Amx;
    std::fprintf(stderr, "kvant: ignoring KVANT_MAX_ISA=%s (expected scalar, avx2, avx512 or amx)\n", env);
    return IsaLimit::None;
  }();
  return limit;
}

VecDotFn vec_dot_for_isa(GgmlType weight_type, CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Scalar: {
      const QuantTraits* traits = quant_traits(weight_type);
      return traits ? traits->vec_dot : nullptr;
    }
    case CpuIsa::Avx2:
#if defined(__x86_64__) || defined(__i386__)
      return cpu_has_avx2() ? avx2::vec_dot(weight_type) : nullptr;
#else
      return nullptr;
#endif
    case CpuIsa::Avx512:
#if defined(__x86_64__)
      return cpu_has_avx512_vnni() ? avx512::vec_dot(weight_type) : nullptr;
#else
      return nullptr;
#endif
  }
  return nullptr;
}

VecDotX4Fn vec_dot_x4_for_isa(GgmlType weight_type, CpuIsa isa) {
#if defined(__x86_64__) || defined(__i386__)
  if (isa == CpuIsa::Avx2 && cpu_has_avx2()) return avx2::vec_dot_x4(weight_type);
#endif
  return nullptr;
}

VecDotFn best_vec_dot(GgmlType weight_type) {
  const IsaLimit limit = isa_limit();
  if (limit >= IsaLimit::Avx512) {
    if (VecDotFn fn = vec_dot_for_isa(weight_type, CpuIsa::Avx512)) return fn;
  }
  if (limit >= IsaLimit::Avx2) {
    if (VecDotFn fn = vec_dot_for_isa(weight_type, CpuIsa::Avx2)) return fn;
  }
  return vec_dot_for_isa(weight_type, CpuIsa::Scalar);
}

VecDotX4Fn best_vec_dot_x4(GgmlType weight_type) {
  return isa_limit() >= IsaLimit::Avx2 ? vec_dot_x4_for_isa(weight_type, CpuIsa::Avx2) : nullptr;
}

}  // namespace kvant
