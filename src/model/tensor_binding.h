// model/tensor_binding.h — validating a family's tensor table against a GGUF file: presence, type
// and shape, with errors that name the tensor, what was found and what was expected.
#pragma once

#include <string>
#include <vector>

#include "backends/ops.h"
#include "gguf/gguf.h"
#include "kvant/status.h"

namespace kvant {

enum class TensorRole { Matrix, Norm, Embedding };

struct TensorSpec {
  std::string name;              // GGUF name, e.g. "blk.3.attn_q.weight"
  std::vector<uint64_t> ne;      // expected shape, ne[0] first
  TensorRole role = TensorRole::Matrix;
  bool required = true;
};

// Binds one tensor. An absent optional tensor gives a view with data == nullptr.
Expected<WeightView> bind_tensor(const gguf::File& file, const TensorSpec& spec);

// Comma-separated names of the weight types kvant computes with ("f32, f16, bf16, q8_0, ...").
std::string supported_weight_types();

}  // namespace kvant
