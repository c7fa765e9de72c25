// tools/args.cpp — ArgParser implementation.
#include "args.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace kvant::cli {

namespace {

Status bad_value(const std::string& name, const std::string& value, const std::string& what) {
  return Status::error("invalid value '" + value + "' for " + name + ": " + what);
}

Expected<int64_t> parse_integer(const std::string& name, const std::string& value, int64_t lo, int64_t hi) {
  if (value.empty()) return bad_value(name, value, "expected an integer");
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(value.c_str(), &end, 10);
  if (errno != 0 || end == nullptr || *end != '\0') return bad_value(name, value, "expected an integer");
  if (v < lo || v > hi) {
    return bad_value(name, value, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return int64_t(v);
}

}  // namespace

ArgParser::ArgParser(std::string command, std::string summary)
    : command_(std::move(command)), summary_(std::move(summary)) {}

void ArgParser::flag(std::vector<std::string> names, bool* target, std::string help) {
  Option o{std::move(names), "", std::move(help), false, nullptr};
  o.apply = [target](const std::string&, const std::string&) { *target = true; return Status::ok(); };
  options_.push_back(std::move(o));
}

void ArgParser::option(std::vector<std::string> names, std::string* target, std::string meta, std::string help) {
  Option o{std::move(names), std::move(meta), std::move(help), true, nullptr};
  o.apply = [target](const std::string&, const std::string& v) { *target = v; return Status::ok(); };
  options_.push_back(std::move(o));
}

void ArgParser::option(std::vector<std::string> names, int32_t* target, std::string meta, std::string help,
                       int64_t lo, int64_t hi) {
  Option o{std::move(names), std::move(meta), std::move(help), true, nullptr};
  o.apply = [=](const std::string& name, const std::string& v) -> Status {
    auto r = parse_integer(name, v, lo, hi);
    if (!r) return r.status();
    *target = int32_t(*r);
    return Status::ok();
  };
  options_.push_back(std::move(o));
}

void ArgParser::option(std::vector<std::string> names, uint32_t* target, std::string meta, std::string help,
                       int64_t lo, int64_t hi) {
  Option o{std::move(names), std::move(meta), std::move(help), true, nullptr};
  o.apply = [=](const std::string& name, const std::string& v) -> Status {
    auto r = parse_integer(name, v, lo, hi);
    if (!r) return r.status();
    *target = uint32_t(*r);
    return Status::ok();
  };
  options_.push_back(std::move(o));
}

void ArgParser::option(std::vector<std::string> names, uint64_t* target, std::string meta, std::string help) {
  Option o{std::move(names), std::move(meta), std::move(help), true, nullptr};
  o.apply = [=](const std::string& name, const std::string& v) -> Status {
    char* end = nullptr;
    errno = 0;
    const unsigned long long r = std::strtoull(v.c_str(), &end, 10);
    if (v.empty() || v[0] == '-' || errno != 0 || *end != '\0') return bad_value(name, v, "expected a non-negative integer");
    *target = uint64_t(r);
    return Status::ok();
  };
  options_.push_back(std::move(o));
}

void ArgParser::option(std::vector<std::string> names, float* target, std::string meta, std::string help) {
  Option o{std::move(names), std::move(meta), std::move(help), true, nullptr};
  o.apply = [=](const std::string& name, const std::string& v) -> Status {
    char* end = nullptr;
    errno = 0;
    const float r = std::strtof(v.c_str(), &end);
    if (v.empty() || errno != 0 || *end != '\0' || !std::isfinite(r)) return bad_value(name, v, "expected a number");
    *target = r;
    return Status::ok();
  };
  options_.push_back(std::move(o));
}

void ArgParser::positional(std::string meta, std::vector<std::string>* target, size_t max_count) {
  positional_meta_ = std::move(meta);
  positionals_ = target;
  max_positionals_ = max_count;
}

ArgParser::Option* ArgParser::find(const std::string& name) {
  for (Option& o : options_) {
    for (const std::string& n : o.names) {
      if (n == name) return &o;
    }
  }
  return nullptr;
}

bool ArgParser::was_set(const std::string& name) const {
  for (const Option& o : options_) {
    for (const std::string& n : o.names) {
      if (n == name) return o.seen;
    }
  }
  return false;
}

Status ArgParser::parse(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    if (arg == "-h" || arg == "--help") {
      help_requested_ = true;
      continue;
    }
    if (arg.size() > 1 && arg[0] == '-' && !(arg.size() > 1 && std::isdigit(static_cast<unsigned char>(arg[1])))) {
      std::string value;
      bool inline_value = false;
      if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
        value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
        inline_value = true;
      }
      Option* o = find(arg);
      if (o == nullptr) {
        return Status::error("unknown option '" + arg + "' for 'kvant " + command_ + "' (see kvant " + command_ + " --help)");
      }
      if (o->takes_value && !inline_value) {
        if (i + 1 >= args.size()) return Status::error("option " + arg + " needs a value (" + o->meta + ")");
        value = args[++i];
      } else if (!o->takes_value && inline_value) {
        return Status::error("option " + arg + " takes no value");
      }
      KVANT_RETURN_IF_ERROR(o->apply(arg, value));
      o->seen = true;
      continue;
    }
    if (positionals_ == nullptr || positionals_->size() >= max_positionals_) {
      return Status::error("unexpected argument '" + arg + "' for 'kvant " + command_ + "' (see kvant " + command_ + " --help)");
    }
    positionals_->push_back(arg);
  }
  return Status::ok();
}

std::string ArgParser::help() const {
  std::string s = "usage: kvant " + command_ + " [options]" + (positionals_ ? " " + positional_meta_ : "") + "\n" +
                  summary_ + "\n\noptions:\n";
  for (const Option& o : options_) {
    std::string left = "  ";
    for (size_t i = 0; i < o.names.size(); ++i) left += (i ? ", " : "") + o.names[i];
    if (o.takes_value) left += " " + o.meta;
    if (left.size() < 32) left.resize(32, ' ');
    else left += "\n" + std::string(32, ' ');
    s += left + o.help + "\n";
  }
  s += "  -h, --help                    show this help\n";
  return s;
}

}  // namespace kvant::cli
