// runtime/perplexity.cpp — llama.cpp-compatible perplexity and KL-divergence against saved base
// log-probabilities (file format in docs/FORMATS.md, "KL base file").
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include "core/thread_pool.h"
#include "kvant/kvant.h"

namespace kvant {

namespace {

constexpr char kKlMagic[4] = {'K', 'V', 'K', 'L'};
constexpr uint32_t kKlVersion = 1;

// log Σ exp(logits - max) with float exponentials summed in double, as llama.cpp's perplexity does.
double log_sum_exp_shifted(const float* logits, int n_vocab, float max_l) {
  double sum = 0.0;
  for (int i = 0; i < n_vocab; ++i) sum += double(std::exp(logits[i] - max_l));
  return std::log(sum);
}

// log-softmax of one row into out.
void log_softmax(const float* logits, int n_vocab, std::vector<float>& out) {
  const float max_l = *std::max_element(logits, logits + n_vocab);
  const double log_sum = log_sum_exp_shifted(logits, n_vocab, max_l);
  out.resize(size_t(n_vocab));
  for (int i = 0; i < n_vocab; ++i) out[i] = float(double(logits[i] - max_l) - log_sum);
}

// -log softmax(logits)[target], without materialising the row.
double token_nll(const float* logits, int n_vocab, int32_t target) {
  const float max_l = *std::max_element(logits, logits + n_vocab);
  return log_sum_exp_shifted(logits, n_vocab, max_l) - double(logits[target] - max_l);
}

struct FileCloser {
  void operator()(FILE* f) const { if (f) std::fclose(f); }
};
using FilePtr = std::unique_ptr<FILE, FileCloser>;

// Header of a KL base file: magic, version, n_vocab, n_ctx, n_chunks, scored per chunk.
struct KlHeader {
  uint32_t version, n_vocab, n_ctx, n_chunks, scored_per_chunk;
};

// Each scored token: f32 min, f32 scale, then n_vocab u16 codes with lp = min + scale*code.
void write_quantised_logprobs(FILE* f, const std::vector<float>& lp) {
  const auto [mn, mx] = std::minmax_element(lp.begin(), lp.end());
  const float min_v = *mn, scale = (*mx - *mn) / 65535.0f;
  std::vector<uint16_t> codes(lp.size());
  for (size_t i = 0; i < lp.size(); ++i) {
    codes[i] = scale > 0 ? uint16_t(std::lround((lp[i] - min_v) / scale)) : 0;
  }
  std::fwrite(&min_v, 4, 1, f);
  std::fwrite(&scale, 4, 1, f);
  std::fwrite(codes.data(), 2, codes.size(), f);
}

bool read_quantised_logprobs(FILE* f, std::vector<float>& lp, std::vector<uint16_t>& codes) {
  float min_v, scale;
  if (std::fread(&min_v, 4, 1, f) != 1 || std::fread(&scale, 4, 1, f) != 1) return false;
  if (std::fread(codes.data(), 2, codes.size(), f) != codes.size()) return false;
  lp.resize(codes.size());
  for (size_t i = 0; i < codes.size(); ++i) lp[i] = min_v + scale * float(codes[i]);
  return true;
}

}  // namespace

Expected<PerplexityResult> compute_perplexity(std::shared_ptr<const Model> model, const SessionParams& session_params,
                                              const std::string& text, const PerplexityParams& params,
                                              const std::function<void(int, double)>& progress) {
  const uint32_t n_ctx = params.n_ctx;
  if (n_ctx < 8) return Status::error("perplexity: context " + std::to_string(n_ctx) + " is too small (minimum 8)");
  std::vector<int32_t> tokens = model->tokenize(text, true, false);
  const int32_t available = int32_t(tokens.size() / n_ctx);
  if (available == 0) {
    return Status::error("perplexity: the text has " + std::to_string(tokens.size()) + " tokens, fewer than one chunk of " +
                         std::to_string(n_ctx) + " (2 chunks recommended)");
  }
  const int32_t n_chunks = params.n_chunks > 0 ? std::min(params.n_chunks, available) : available;
  const int n_vocab = model->n_vocab();
  const uint32_t first = n_ctx / 2;
  const uint32_t scored_per_chunk = n_ctx - 1 - first;

  SessionParams sp = session_params;
  sp.n_ctx = n_ctx;
  KVANT_ASSIGN_OR_RETURN(std::unique_ptr<Session> session, Session::create(model, sp));

  FilePtr save, base;
  if (!params.kl_base_save.empty()) {
    save.reset(std::fopen(params.kl_base_save.c_str(), "wb"));
    if (!save) return Status::error(params.kl_base_save + ": cannot open for writing");
    const KlHeader h{kKlVersion, uint32_t(n_vocab), n_ctx, uint32_t(n_chunks), scored_per_chunk};
    std::fwrite(kKlMagic, 1, 4, save.get());
    std::fwrite(&h, sizeof h, 1, save.get());
  }
  if (!params.kl_base.empty()) {
    base.reset(std::fopen(params.kl_base.c_str(), "rb"));
    if (!base) return Status::error(params.kl_base + ": cannot open");
    char magic[4];
    KlHeader h{};
    if (std::fread(magic, 1, 4, base.get()) != 4 || std::memcmp(magic, kKlMagic, 4) != 0 ||
        std::fread(&h, sizeof h, 1, base.get()) != 1) {
      return Status::error(params.kl_base + ": not a kvant KL base file (bad magic or truncated header)");
    }
    if (h.version != kKlVersion) return Status::error(params.kl_base + ": unsupported version " + std::to_string(h.version));
    if (h.n_vocab != uint32_t(n_vocab) || h.n_ctx != n_ctx || h.n_chunks < uint32_t(n_chunks)) {
      return Status::error(params.kl_base + ": made with n_vocab " + std::to_string(h.n_vocab) + ", ctx " +
                           std::to_string(h.n_ctx) + ", " + std::to_string(h.n_chunks) + " chunks; this run has n_vocab " +
                           std::to_string(n_vocab) + ", ctx " + std::to_string(n_ctx) + ", " + std::to_string(n_chunks) + " chunks");
    }
  }

  PerplexityResult result;
  double nll = 0, nll2 = 0, kld_sum = 0, kld2_sum = 0;
  uint64_t count = 0, same_top = 0;
  std::vector<float> lp, base_lp;
  std::vector<uint16_t> codes(static_cast<size_t>(n_vocab));
  std::vector<int32_t> chunk(n_ctx);
  std::vector<double> row_nll(scored_per_chunk);
  ThreadPool pool(session_params.n_threads == 0 ? ThreadPool::default_threads() : session_params.n_threads);
  for (int32_t c = 0; c < n_chunks; ++c) {
    std::copy(tokens.begin() + size_t(c) * n_ctx, tokens.begin() + size_t(c + 1) * n_ctx, chunk.begin());
    if (model->add_bos() && model->bos_id() >= 0) chunk[0] = model->bos_id();
    session->reset();
    KVANT_RETURN_IF_ERROR(session->eval_logits_from(chunk, first));
    if (!save && !base) {
      // Plain perplexity: the scored rows are independent, so they are reduced on the pool's threads
      // and summed in order afterwards (same result for any thread count).
      pool.parallel_for(int64_t(scored_per_chunk), [&](int64_t begin, int64_t end, unsigned) {
        for (int64_t r = begin; r < end; ++r) {
          const uint32_t j = first + uint32_t(r);
          row_nll[size_t(r)] = token_nll(session->logits(int(j)), n_vocab, chunk[j + 1]);
        }
      });
      for (double v : row_nll) {
        nll += v;
        nll2 += v * v;
      }
      count += scored_per_chunk;
      if (progress) progress(c + 1, std::exp(nll / double(count)));
      continue;
    }
    for (uint32_t j = first; j < n_ctx - 1; ++j) {
      const float* logits = session->logits(int(j));
      log_softmax(logits, n_vocab, lp);
      const double v = -double(lp[size_t(chunk[j + 1])]);
      nll += v;
      nll2 += v * v;
      ++count;
      if (save) write_quantised_logprobs(save.get(), lp);
      if (base) {
        if (!read_quantised_logprobs(base.get(), base_lp, codes)) {
          return Status::error(params.kl_base + ": truncated at chunk " + std::to_string(c + 1));
        }
        double kld = 0;
        for (int i = 0; i < n_vocab; ++i) {
          const double pb = std::exp(double(base_lp[i]));
          kld += pb * (double(base_lp[i]) - double(lp[i]));
        }
        kld_sum += kld;
        kld2_sum += kld * kld;
        const auto top_base = std::max_element(base_lp.begin(), base_lp.end()) - base_lp.begin();
        const auto top = std::max_element(lp.begin(), lp.end()) - lp.begin();
        same_top += top_base == top;
      }
    }
    if (progress) progress(c + 1, std::exp(nll / double(count)));
  }
  const double mean = nll / double(count);
  double var = nll2 / double(count) - mean * mean;
  result.ppl = std::exp(mean);
  result.ppl_err = var > 0 && count > 1 ? std::sqrt(var / double(count - 1)) * result.ppl : 0.0;
  result.n_tokens_scored = count;
  result.n_chunks = n_chunks;
  if (base) {
    result.has_kl = true;
    result.kld_mean = kld_sum / double(count);
    const double kvar = kld2_sum / double(count) - result.kld_mean * result.kld_mean;
    result.kld_err = kvar > 0 && count > 1 ? std::sqrt(kvar / double(count - 1)) : 0.0;
    result.same_top_pct = 100.0 * double(same_top) / double(count);
  }
  if (save && std::fflush(save.get()) != 0) return Status::error(params.kl_base_save + ": write failed");
  return result;
}

}  // namespace kvant
