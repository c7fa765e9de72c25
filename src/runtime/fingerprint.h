// runtime/fingerprint.h — a 64-bit fingerprint of a model (hparams + tensor directory), used to refuse
// loading a saved KV context into another model.
#pragma once

#include <cstdint>

#include "kvant/kvant.h"

namespace kvant {

// FNV-1a 64 over a canonical text of the architecture, hparams and every tensor's name, type and shape.
uint64_t model_fingerprint(const Model& model);

}  // namespace kvant
