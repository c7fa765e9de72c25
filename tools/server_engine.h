// tools/server_engine.h — the generation engine behind `kvant serve`: N slots, each with its own Session
// (KV cache), and one scheduler thread that interleaves decode steps over the active slots (round robin,
// one token per slot per turn). Requests wait in a FIFO queue while every slot is busy. A request goes to
// the free slot whose cached tokens share the longest prefix with its prompt; only the rest is evaluated.
//
// Threads: the Model is shared read-only. Each Session (and its CPU thread pool) is only ever used by the
// scheduler thread, which runs one slot at a time, so every session gets the full thread count and the
// pools of the idle slots sleep.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kvant/kvant.h"

namespace kvant::cli {

struct GenerationRequest {
  std::vector<int32_t> prompt;
  SamplerParams sampling;
  int32_t max_tokens = 16;
  std::vector<std::string> stops;
};

// One generation as seen by both sides: the scheduler appends text; the HTTP handler takes it.
class GenerationJob {
 public:
  explicit GenerationJob(GenerationRequest r) : request(std::move(r)) {}

  // Consumer side: waits up to timeout_ms for new text or the end. Moves new text into `text`; returns
  // true once the job has finished (then no more text will come).
  bool wait(std::string& text, int timeout_ms);
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

  // Valid after wait() returned true.
  std::string finish_reason;  // "stop", "length", "cancelled" or "error"
  std::string error;
  int32_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;

  // Producer side (the scheduler).
  void append(const std::string& text);
  void finish(const std::string& reason, const std::string& error_message = "");

  const GenerationRequest request;

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::string pending_;
  bool finished_ = false;
  std::atomic<bool> cancelled_{false};
};

class ServerEngine {
 public:
  static Expected<std::unique_ptr<ServerEngine>> create(std::shared_ptr<const Model> model,
                                                        const SessionParams& params, int n_slots);
  ~ServerEngine();  // stops the scheduler; queued and running jobs finish as "cancelled"

  // Queues a request (never refuses; the caller checked it against n_ctx()).
  std::shared_ptr<GenerationJob> submit(GenerationRequest request);
  uint32_t n_ctx() const { return n_ctx_; }
  struct Stats {
    int busy_slots = 0, queued = 0;
    uint64_t finished = 0, cancelled = 0;  // jobs so far (cancelled: client gone or shutdown)
  };
  Stats stats();
  int n_slots() const { return int(slots_.size()); }
  const Model& model() const { return *model_; }

 private:
  struct Slot;
  ServerEngine() = default;
  void scheduler_loop();
  void assign_queued_jobs();  // called with mutex_ held
  void step(Slot& slot);       // one prefill chunk or one decode token

  std::shared_ptr<const Model> model_;
  std::vector<std::unique_ptr<Slot>> slots_;
  uint32_t n_ctx_ = 0, n_batch_ = 512;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<GenerationJob>> queue_;
  bool stop_ = false;
  std::atomic<int> busy_slots_{0};
  std::atomic<uint64_t> finished_{0}, cancelled_{0};
  std::thread scheduler_;
};

}  // namespace kvant::cli
