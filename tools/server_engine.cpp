// tools/server_engine.cpp — slots, the request queue and the round-robin scheduler of `kvant serve`.
#include "server_engine.h"

#include <algorithm>
#include <chrono>

#include "kv_context.h"
#include "text_stream.h"

namespace kvant::cli {

bool GenerationJob::wait(std::string& text, int timeout_ms) {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return finished_ || !pending_.empty(); });
  text = std::move(pending_);
  pending_.clear();
  return finished_;
}

void GenerationJob::append(const std::string& text) {
  if (text.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_ += text;
  }
  cv_.notify_all();
}

void GenerationJob::finish(const std::string& reason, const std::string& error_message) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finished_) return;
    finish_reason = reason;
    error = error_message;
    finished_ = true;
  }
  cv_.notify_all();
}

struct ServerEngine::Slot {
  std::unique_ptr<Session> session;
  std::shared_ptr<GenerationJob> job;  // null: free
  size_t prefill_pos = 0;              // prompt tokens already in the cache
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<TextStream> stream;
};

Expected<std::unique_ptr<ServerEngine>> ServerEngine::create(std::shared_ptr<const Model> model,
                                                             const SessionParams& params, int n_slots) {
  auto engine = std::unique_ptr<ServerEngine>(new ServerEngine());
  engine->model_ = model;
  for (int i = 0; i < n_slots; ++i) {
    auto session = Session::create(model, params);
    if (!session) return session.status().with_context("slot " + std::to_string(i));
    auto slot = std::make_unique<Slot>();
    slot->session = std::move(session).value();
    engine->slots_.push_back(std::move(slot));
  }
  engine->n_ctx_ = engine->slots_.front()->session->n_ctx();
  engine->n_batch_ = params.n_batch == 0 ? 512 : params.n_batch;
  engine->scheduler_ = std::thread([e = engine.get()] { e->scheduler_loop(); });
  return engine;
}

ServerEngine::~ServerEngine() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (scheduler_.joinable()) scheduler_.join();
}

std::shared_ptr<GenerationJob> ServerEngine::submit(GenerationRequest request) {
  auto job = std::make_shared<GenerationJob>(std::move(request));
  job->prompt_tokens = int32_t(job->request.prompt.size());
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(job);
  }
  cv_.notify_all();
  return job;
}

ServerEngine::Stats ServerEngine::stats() {
  Stats st;
  std::lock_guard<std::mutex> lock(mutex_);
  st.queued = int(queue_.size());
  st.busy_slots = busy_slots_.load();
  st.finished = finished_.load();
  st.cancelled = cancelled_.load();
  return st;
}

void ServerEngine::assign_queued_jobs() {
  while (!queue_.empty()) {
    std::shared_ptr<GenerationJob> job = queue_.front();
    if (job->cancelled()) {
      queue_.pop_front();
      job->finish("cancelled");
      ++cancelled_;
      ++finished_;
      continue;
    }
    const std::vector<int32_t>& prompt = job->request.prompt;
    Slot* best = nullptr;
    size_t best_common = 0;
    for (auto& slot : slots_) {
      if (slot->job) continue;
      const size_t common = common_prefix(slot->session->tokens(), prompt);
      if (best == nullptr || common > best_common) {
        best = slot.get();
        best_common = common;
      }
    }
    if (best == nullptr) return;  // every slot is busy: the job stays queued
    queue_.pop_front();
    size_t keep = std::min(best_common, prompt.size() - 1);  // evaluate at least one token for logits
    if (!best->session->truncate(uint32_t(keep))) {
      best->session->reset();
      keep = 0;
    }
    best->job = job;
    ++busy_slots_;
    best->prefill_pos = keep;
    job->cached_tokens = int32_t(keep);
    best->sampler = std::make_unique<Sampler>(job->request.sampling);
    best->stream = std::make_unique<TextStream>(job->request.stops);
  }
}

void ServerEngine::scheduler_loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      const auto has_work = [&] {
        return stop_ || !queue_.empty() ||
               std::any_of(slots_.begin(), slots_.end(), [](const auto& s) { return s->job != nullptr; });
      };
      cv_.wait(lock, has_work);
      if (stop_) break;
      assign_queued_jobs();
    }
    for (auto& slot : slots_) {
      if (slot->job) step(*slot);
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& job : queue_) job->finish("cancelled");
  for (auto& slot : slots_) {
    if (slot->job) slot->job->finish("cancelled");
  }
}

void ServerEngine::step(Slot& slot) {
  GenerationJob& job = *slot.job;
  Session& s = *slot.session;
  const std::vector<int32_t>& prompt = job.request.prompt;
  auto release = [&](const std::string& reason, const std::string& error = "") {
    if (reason != "error" && reason != "cancelled") job.append(slot.stream->flush());
    job.finish(reason, error);
    if (reason == "cancelled") ++cancelled_;
    ++finished_;
    --busy_slots_;
    slot.job.reset();
  };
  if (job.cancelled()) return release("cancelled");
  if (slot.prefill_pos < prompt.size()) {  // prompt: one batch per turn so other slots keep streaming
    const size_t n = std::min<size_t>(n_batch_, prompt.size() - slot.prefill_pos);
    const std::vector<int32_t> chunk(prompt.begin() + long(slot.prefill_pos), prompt.begin() + long(slot.prefill_pos + n));
    if (Status st = s.eval(chunk); !st) {
      s.reset();
      return release("error", st.message());
    }
    slot.prefill_pos += n;
    if (slot.prefill_pos == prompt.size()) {
      for (int32_t t : prompt) slot.sampler->accept(t);
    }
    return;
  }
  const Model& m = *model_;
  const int32_t next = slot.sampler->sample(s.logits(), m.n_vocab());
  if (m.is_end_of_generation(next)) return release("stop");
  ++job.completion_tokens;
  job.append(slot.stream->push(m.token_to_piece(next)));
  if (slot.stream->stopped()) return release("stop");
  if (job.completion_tokens >= job.request.max_tokens || s.n_past() >= s.n_ctx()) return release("length");
  slot.sampler->accept(next);
  if (Status st = s.eval({next}); !st) {
    s.reset();
    return release("error", st.message());
  }
}

}  // namespace kvant::cli
