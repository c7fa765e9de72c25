// tools/cmd_chat.cpp — `kvant chat`: an interactive chat over stdin (a terminal or a pipe). The history
// stays in the KV cache: each turn re-renders the conversation, keeps the cached tokens it shares with
// it and evaluates only the rest. Ctrl-C stops a reply; Ctrl-C at the prompt exits.
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>

#include "common.h"
#include "kv_context.h"
#include "kvant/chat.h"
#include "text_stream.h"

namespace kvant::cli {

namespace {

std::atomic<bool> g_interrupted{false};

void on_sigint(int) { g_interrupted.store(true); }

void install_sigint_handler() {
  struct sigaction sa = {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocked read at the prompt returns EINTR
  sigaction(SIGINT, &sa, nullptr);
}

// One line from stdin without its newline; false at end of input or on Ctrl-C.
bool read_line(std::string& line) {
  line.clear();
  for (;;) {
    const int c = std::fgetc(stdin);
    if (c == EOF) {
      if (std::ferror(stdin) && errno == EINTR) return false;
      return !line.empty();
    }
    if (c == '\n') return true;
    line.push_back(char(c));
  }
}

struct ChatState {
  const Model* model = nullptr;
  Session* session = nullptr;
  std::string template_name;
  std::vector<ChatMessage> history;
  std::vector<int32_t> base_tokens;  // a loaded context the history continues (its messages are unknown)
  std::string system;
};

// The tokens the next reply must follow: base context + rendered history with the assistant header.
Expected<std::vector<int32_t>> conversation_tokens(const ChatState& c) {
  KVANT_ASSIGN_OR_RETURN(std::string text, render_chat(*c.model, c.history, true, c.template_name));
  if (c.base_tokens.empty()) return c.model->tokenize(text, true, true);
  std::vector<int32_t> tokens = c.base_tokens;
  const std::vector<int32_t> rest = c.model->tokenize(text, false, true);
  tokens.insert(tokens.end(), rest.begin(), rest.end());
  return tokens;
}

// Brings the session to `tokens` evaluating only what is not cached yet; returns how many were evaluated.
Expected<size_t> sync_session(Session& s, const std::vector<int32_t>& tokens) {
  if (tokens.size() > s.n_ctx()) {
    return Status::error("the conversation is " + std::to_string(tokens.size()) + " tokens, the context holds " +
                         std::to_string(s.n_ctx()) + " (use /reset or raise -c)");
  }
  size_t keep = common_prefix(s.tokens(), tokens);
  if (keep == tokens.size()) --keep;  // re-evaluate the last token to get logits
  if (!s.truncate(uint32_t(keep))) {
    s.reset();
    keep = 0;
  }
  KVANT_RETURN_IF_ERROR(s.eval(std::vector<int32_t>(tokens.begin() + long(keep), tokens.end())));
  return tokens.size() - keep;
}

// Generates one reply, streaming it to stdout. Returns the reply text.
Expected<std::string> generate_reply(ChatState& c, const SamplerParams& sampling, int32_t n_predict,
                                     const std::vector<std::string>& stops) {
  Session& s = *c.session;
  const Model& m = *c.model;
  Sampler sampler(sampling);
  for (int32_t t : s.tokens()) sampler.accept(t);
  TextStream stream(stops);
  std::string reply;
  auto emit = [&](const std::string& text) {
    reply += text;
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  };
  g_interrupted.store(false);
  for (int generated = 0; n_predict < 0 || generated < n_predict; ++generated) {
    if (g_interrupted.exchange(false)) {
      std::fprintf(stderr, "\n[reply stopped]\n");
      break;
    }
    const int32_t next = sampler.sample(s.logits(), m.n_vocab());
    if (m.is_end_of_generation(next)) break;
    emit(stream.push(m.token_to_piece(next)));
    if (stream.stopped()) break;
    sampler.accept(next);
    if (s.n_past() >= s.n_ctx()) {
      std::fprintf(stderr, "\n[context full]\n");
      break;
    }
    KVANT_RETURN_IF_ERROR(s.eval({next}));
  }
  emit(stream.flush());
  std::fputc('\n', stdout);
  std::fflush(stdout);
  return reply;
}

// Handles a /command; returns false for /exit.
bool run_command(ChatState& c, const std::string& line) {
  const size_t space = line.find(' ');
  const std::string cmd = line.substr(0, space);
  const std::string arg = space == std::string::npos ? "" : line.substr(space + 1);
  if (cmd == "/exit" || cmd == "/quit") return false;
  if (cmd == "/reset") {
    c.history.clear();
    if (!c.system.empty()) c.history.push_back({"system", c.system});
    c.base_tokens.clear();
    c.session->reset();
    std::fprintf(stderr, "[conversation reset]\n");
  } else if (cmd == "/save" && !arg.empty()) {
    if (Status st = c.session->save_kv(arg); !st) {
      std::fprintf(stderr, "error: %s\n", st.message().c_str());
    } else {
      std::fprintf(stderr, "[saved %u tokens to %s]\n", c.session->n_past(), arg.c_str());
    }
  } else if (cmd == "/load" && !arg.empty()) {
    if (Status st = c.session->load_kv(arg); !st) {
      std::fprintf(stderr, "error: %s\n", st.message().c_str());
      c.base_tokens.clear();
      c.history.clear();
      if (!c.system.empty()) c.history.push_back({"system", c.system});
    } else {
      c.base_tokens = c.session->tokens();
      c.history.clear();
      std::fprintf(stderr, "[loaded %zu tokens from %s]\n", c.base_tokens.size(), arg.c_str());
    }
  } else {
    std::fprintf(stderr, "commands: /reset, /save FILE, /load FILE, /exit\n");
  }
  return true;
}

}  // namespace

int cmd_chat(const std::vector<std::string>& args) {
  std::string model_path, template_name, system, save_kv, load_kv;
  int32_t n_predict = -1;
  bool verbose = false;
  SessionParams session;
  SamplerParams sampling;
  ArgParser p("chat", "Chat with the model over stdin (one message per line; /reset, /save FILE, /load FILE, /exit).");
  p.option({"-m", "--model"}, &model_path, "FILE", "GGUF model (required)");
  p.option({"--chat-template"}, &template_name, "NAME", "llama3, chatml, gemma, phi3, mistral or zephyr (default: the model's)");
  p.option({"--system"}, &system, "TEXT", "system message");
  p.option({"-n", "--n-predict"}, &n_predict, "N", "most tokens per reply (default -1: until the end of the turn)", -1, 1 << 24);
  add_sampling_options(p, sampling);
  p.option({"--save-kv"}, &save_kv, "FILE", "save the conversation's KV context at exit");
  p.option({"--load-kv"}, &load_kv, "FILE", "continue a saved KV context");
  p.flag({"--verbose"}, &verbose, "print per-turn token counts (cached / evaluated / generated) on stderr");
  add_session_options(p, session);
  if (Status st = p.parse(args); !st) return fail("chat", st.message());
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return 0;
  }
  if (model_path.empty()) return fail("chat", "missing -m/--model FILE");
  if (Status st = check_sampling(sampling); !st) return fail("chat", st.message());

  auto model = Model::load(model_path);
  if (!model) return fail("chat", model.error());
  auto family = chat_template_name(**model, template_name);
  if (!family) return fail("chat", family.error());
  auto stops = chat_stop_strings(**model, *family);
  if (!stops) return fail("chat", stops.error());
  auto session_or = Session::create(*model, session);
  if (!session_or) return fail("chat", session_or.error());

  ChatState c;
  c.model = model->get();
  c.session = session_or->get();
  c.template_name = *family;
  c.system = system;
  if (!load_kv.empty()) {
    if (Status st = c.session->load_kv(load_kv); !st) return fail("chat", st.message());
    c.base_tokens = c.session->tokens();
  } else if (!system.empty()) {
    c.history.push_back({"system", system});
  }
  std::fprintf(stderr, "kvant chat: %s, template %s, context %u, KV %s%s\n", c.model->info().path.c_str(),
               family->c_str(), c.session->n_ctx(), c.session->kv_description().c_str(),
               c.base_tokens.empty() ? "" : (", continuing " + std::to_string(c.base_tokens.size()) + " saved tokens").c_str());
  install_sigint_handler();
  const bool interactive = isatty(fileno(stdin)) != 0;
  std::string line;
  for (;;) {
    if (interactive) {
      std::fputs("> ", stdout);
      std::fflush(stdout);
    }
    g_interrupted.store(false);
    if (!read_line(line)) break;  // end of input, or Ctrl-C at the prompt
    if (line.empty()) continue;
    if (line[0] == '/') {
      if (!run_command(c, line)) break;
      continue;
    }
    c.history.push_back({"user", line});
    auto tokens = conversation_tokens(c);
    auto evaluated = tokens ? sync_session(*c.session, *tokens) : Expected<size_t>(tokens.status());
    if (!evaluated) {
      std::fprintf(stderr, "error: %s\n", evaluated.error().c_str());
      c.history.pop_back();
      continue;
    }
    const uint32_t n_before_reply = c.session->n_past();
    auto reply = generate_reply(c, sampling, n_predict, *stops);
    if (!reply) {
      std::fprintf(stderr, "error: %s\n", reply.error().c_str());
      c.history.pop_back();
      continue;
    }
    c.history.push_back({"assistant", *reply});
    if (verbose) {
      std::fprintf(stderr, "[turn: %zu prompt tokens, %zu cached, %zu evaluated, %u generated]\n", tokens->size(),
                   tokens->size() - *evaluated, *evaluated, c.session->n_past() - n_before_reply);
    }
  }
  if (!save_kv.empty()) {
    if (Status st = c.session->save_kv(save_kv); !st) return fail("chat", st.message());
    std::fprintf(stderr, "kvant chat: saved %u tokens to %s\n", c.session->n_past(), save_kv.c_str());
  }
  return 0;
}

}  // namespace kvant::cli
