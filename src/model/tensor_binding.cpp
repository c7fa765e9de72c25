// model/tensor_binding.cpp — bind_tensor: presence, type and shape checks for model tensors.
#include "model/tensor_binding.h"

#include "quant/quant.h"

namespace kvant {

namespace {

constexpr GgmlType kWeightTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0,
                                     GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
                                     GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K,
                                     GgmlType::Q6_K};

std::string shape_text(const uint64_t* ne, size_t n) {
  std::string s = "[";
  for (size_t i = 0; i < n; ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

std::string type_text(uint32_t id) {
  auto name = ggml_type_name(GgmlType(id));
  return name.empty() || name == "unknown" ? "type id " + std::to_string(id) : std::string(name);
}

}  // namespace

std::string supported_weight_types() {
  std::string s;
  for (GgmlType t : kWeightTypes) s += (s.empty() ? "" : ", ") + std::string(ggml_type_name(t));
  return s;
}

Expected<WeightView> bind_tensor(const gguf::File& file, const TensorSpec& spec) {
  const gguf::TensorInfo* t = file.find_tensor(spec.name);
  if (t == nullptr) {
    if (!spec.required) return WeightView{};
    return Status::error(file.path() + ": missing required tensor '" + spec.name + "'");
  }
  // Shapes compare on the expected rank; trailing dims of size 1 are equivalent.
  bool shape_ok = t->n_dims <= 4;
  for (size_t i = 0; shape_ok && i < 4; ++i) {
    const uint64_t want = i < spec.ne.size() ? spec.ne[i] : 1;
    if (t->ne[i] != want) shape_ok = false;
  }
  if (!shape_ok) {
    return Status::error(file.path() + ": tensor '" + spec.name + "' has shape " +
                         shape_text(t->ne.data(), t->n_dims) + ", expected " +
                         shape_text(spec.ne.data(), spec.ne.size()));
  }
  const GgmlType type = GgmlType(t->type_id);
  if (spec.role == TensorRole::Norm) {
    if (type != GgmlType::F32) {
      return Status::error(file.path() + ": tensor '" + spec.name + "' has type " + type_text(t->type_id) +
                           ", supported for norms: f32");
    }
  } else {
    bool supported = false;
    for (GgmlType w : kWeightTypes) supported |= (w == type);
    const QuantTraits* traits = supported ? quant_traits(type) : nullptr;
    if (traits == nullptr || traits->vec_dot == nullptr) {
      return Status::error(file.path() + ": tensor '" + spec.name + "' has type " + type_text(t->type_id) +
                           ", supported: " + supported_weight_types());
    }
  }
  WeightView view;
  view.data = t->data;
  view.type = type;
  view.n_in = int64_t(t->ne[0]);
  view.n_out = int64_t(t->ne[1] * t->ne[2] * t->ne[3]);
  view.row_bytes = view.n_out > 0 ? size_t(t->n_bytes / uint64_t(view.n_out)) : 0;
  return view;
}

}  // namespace kvant
