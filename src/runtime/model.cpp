// runtime/model.cpp — Model::load: architecture check, hparams, tensor table, tokenizer, ModelInfo.
#include <algorithm>

#include "quant/ggml_type.h"
#include "runtime/model_impl.h"

namespace kvant {

namespace {

constexpr const char* kSupportedArchitectures = "llama";

ModelInfo describe(const gguf::File& file, const LlamaWeights& w, const Tokenizer& tok) {
  const Hparams& hp = w.hp;
  ModelInfo info;
  info.path = file.path();
  info.architecture = hp.arch;
  if (auto name = file.get_string_opt("general.name"); name && name->has_value()) info.name = **name;
  if (auto tmpl = file.get_string_opt("tokenizer.chat_template"); tmpl && tmpl->has_value()) info.chat_template = **tmpl;
  info.n_vocab = hp.n_vocab;
  info.n_ctx_train = hp.n_ctx_train;
  info.n_embd = hp.n_embd;
  info.n_layer = hp.n_layer;
  info.n_head = hp.n_head;
  info.n_head_kv = hp.n_head_kv;
  info.head_dim = hp.head_dim;
  info.n_ff = hp.n_ff;
  info.rope_dim = hp.rope_dim;
  info.rope_freq_base = hp.rope_freq_base;
  info.rms_eps = hp.rms_eps;
  info.rope_neox = hp.rope_ordering == RopeOrdering::NeoX;
  info.tied_output = w.tied_output;
  info.has_rope_freqs = !w.rope_freqs.empty();
  info.tokenizer_model = std::string(tok.model_name());
  info.tokenizer_pre = std::string(tok.pre_name());
  info.bos_id = tok.bos_id();
  info.eos_id = tok.eos_id();
  info.eot_id = tok.eot_id();
  info.add_bos = tok.add_bos();
  for (const gguf::TensorInfo& t : file.tensors()) {
    ModelInfo::Tensor d;
    d.name = t.name;
    auto type_name = ggml_type_name(GgmlType(t.type_id));
    d.type = type_name.empty() || type_name == "unknown" ? "type" + std::to_string(t.type_id) : std::string(type_name);
    d.ne.assign(t.ne.begin(), t.ne.begin() + t.n_dims);
    d.bytes = t.n_bytes;
    info.n_params += t.n_elements;
    info.weight_bytes += t.n_bytes;
    info.tensors.push_back(std::move(d));
  }
  return info;
}

}  // namespace

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

Expected<std::shared_ptr<Model>> Model::load(const std::string& path) {
  KVANT_ASSIGN_OR_RETURN(gguf::File file, gguf::File::open(path));
  auto arch = file.get_string("general.architecture");
  if (!arch) return arch.status();
  if (*arch != "llama") {
    return Status::error(path + ": unsupported architecture '" + *arch + "' (supported: " +
                         kSupportedArchitectures + ")");
  }
  KVANT_ASSIGN_OR_RETURN(Hparams hp, read_hparams(file, *arch));
  KVANT_ASSIGN_OR_RETURN(LlamaWeights weights, load_llama(file, hp));
  KVANT_ASSIGN_OR_RETURN(Tokenizer tokenizer, Tokenizer::from_gguf(file));
  if (uint32_t(tokenizer.n_vocab()) > weights.hp.n_vocab) {
    return Status::error(path + ": tokenizer has " + std::to_string(tokenizer.n_vocab()) +
                         " tokens but token_embd.weight has only " + std::to_string(weights.hp.n_vocab) + " rows");
  }
  ModelInfo info = describe(file, weights, tokenizer);
  auto impl = std::unique_ptr<Impl>(new Impl{std::move(file), std::move(tokenizer), std::move(weights), std::move(info)});
  return std::shared_ptr<Model>(new Model(std::move(impl)));
}

const ModelInfo& Model::info() const { return impl_->info; }

std::vector<int32_t> Model::tokenize(std::string_view text, bool add_special, bool parse_special) const {
  return impl_->tokenizer.encode(text, add_special, parse_special);
}

std::string Model::token_to_piece(int32_t token, bool render_special) const {
  return impl_->tokenizer.token_to_piece(token, render_special);
}

std::string Model::detokenize(const std::vector<int32_t>& tokens, bool render_special) const {
  return impl_->tokenizer.decode(tokens, render_special);
}

bool Model::is_end_of_generation(int32_t token) const { return impl_->tokenizer.is_end_of_generation(token); }
int32_t Model::bos_id() const { return impl_->tokenizer.bos_id(); }
bool Model::add_bos() const { return impl_->tokenizer.add_bos(); }
int32_t Model::n_vocab() const { return int32_t(impl_->weights.hp.n_vocab); }

}  // namespace kvant
