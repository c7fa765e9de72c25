// runtime/model_impl.h — what a loaded Model holds: the mapped GGUF, tokenizer, hparams and the bound
// weights of its family. Internal to libkvant.
#pragma once

#include "gguf/gguf.h"
#include "kvant/kvant.h"
#include "model/llama.h"
#include "tokenizer/tokenizer.h"

namespace kvant {

struct Model::Impl {
  gguf::File file;
  Tokenizer tokenizer;
  LlamaWeights weights;
  ModelInfo info;
};

}  // namespace kvant
