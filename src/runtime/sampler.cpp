// runtime/sampler.cpp — token sampling: repetition penalty, top-k, top-p, min-p, temperature, seeded
// draw; greedy (argmax) when the temperature is <= 0.
#include <algorithm>
#include <cmath>
#include <deque>
#include <numeric>
#include <random>

#include "kvant/kvant.h"

namespace kvant {

struct Sampler::Impl {
  SamplerParams params;
  std::mt19937_64 rng;
  std::deque<int32_t> recent;
  std::vector<std::pair<float, int32_t>> candidates;  // (logit or prob, token)
};

Sampler::Sampler(const SamplerParams& params) : impl_(std::make_unique<Impl>()) {
  impl_->params = params;
  const uint64_t seed = params.seed == 0xFFFFFFFFFFFFFFFFull ? std::random_device{}() : params.seed;
  impl_->rng.seed(seed);
}

Sampler::~Sampler() = default;

void Sampler::accept(int32_t token) {
  impl_->recent.push_back(token);
  while (impl_->params.repeat_last_n >= 0 && impl_->recent.size() > size_t(impl_->params.repeat_last_n)) {
    impl_->recent.pop_front();
  }
}

int32_t Sampler::sample(const float* logits, int32_t n_vocab) {
  Impl& s = *impl_;
  const SamplerParams& p = s.params;
  auto& c = s.candidates;
  c.resize(size_t(n_vocab));
  for (int32_t i = 0; i < n_vocab; ++i) c[i] = {logits[i], i};

  // Repetition penalty (llama.cpp style: divide positive logits, multiply negative ones).
  if (p.repeat_penalty != 1.0f) {
    for (int32_t tok : s.recent) {
      if (tok < 0 || tok >= n_vocab) continue;
      float& l = c[tok].first;
      l = l > 0 ? l / p.repeat_penalty : l * p.repeat_penalty;
    }
  }
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  if (p.temperature <= 0.0f) {
    return std::min_element(c.begin(), c.end(), by_logit)->second;
  }
  std::sort(c.begin(), c.end(), by_logit);
  if (p.top_k > 0 && size_t(p.top_k) < c.size()) c.resize(size_t(p.top_k));

  // Softmax over the remaining candidates (at temperature 1 for the p-filters, as llama.cpp does).
  auto softmax = [&](float temp) {
    const float max_l = c.front().first;
    std::vector<double> probs(c.size());
    double sum = 0;
    for (size_t i = 0; i < c.size(); ++i) sum += probs[i] = std::exp(double(c[i].first - max_l) / temp);
    for (double& pr : probs) pr /= sum;
    return probs;
  };
  if (p.top_p < 1.0f) {
    auto probs = softmax(1.0f);
    double cum = 0;
    size_t keep = c.size();
    for (size_t i = 0; i < c.size(); ++i) {
      cum += probs[i];
      if (cum >= p.top_p) { keep = i + 1; break; }
    }
    c.resize(std::max<size_t>(keep, 1));
  }
  if (p.min_p > 0.0f) {
    auto probs = softmax(1.0f);
    size_t keep = 1;
    while (keep < c.size() && probs[keep] >= p.min_p * probs[0]) ++keep;
    c.resize(keep);
  }
  auto probs = softmax(p.temperature);
  std::discrete_distribution<size_t> dist(probs.begin(), probs.end());
  return c[dist(s.rng)].second;
}

}  // namespace kvant
