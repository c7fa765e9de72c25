// tools/args.h — a small command-line parser for kvant subcommands: typed options with several
// spellings, clear errors for unknown flags, missing or malformed values, and generated help text.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kvant/status.h"

namespace kvant::cli {

class ArgParser {
 public:
  ArgParser(std::string command, std::string summary);

  // names: e.g. {"-m", "--model"}. Values are parsed and range-checked when seen.
  void flag(std::vector<std::string> names, bool* target, std::string help);
  void option(std::vector<std::string> names, std::string* target, std::string meta, std::string help);
  void option(std::vector<std::string> names, int32_t* target, std::string meta, std::string help,
              int64_t min_value = INT32_MIN, int64_t max_value = INT32_MAX);
  void option(std::vector<std::string> names, uint32_t* target, std::string meta, std::string help,
              int64_t min_value = 0, int64_t max_value = UINT32_MAX);
  void option(std::vector<std::string> names, uint64_t* target, std::string meta, std::string help);
  void option(std::vector<std::string> names, float* target, std::string meta, std::string help);
  // Accept bare arguments into `target` (at most max_count).
  void positional(std::string meta, std::vector<std::string>* target, size_t max_count);

  // Parses args (excluding the program and subcommand names). -h/--help sets help_requested().
  Status parse(const std::vector<std::string>& args);
  bool help_requested() const { return help_requested_; }
  bool was_set(const std::string& name) const;
  std::string help() const;

 private:
  struct Option {
    std::vector<std::string> names;
    std::string meta, help;
    bool takes_value = true;
    std::function<Status(const std::string& name, const std::string& value)> apply;
    bool seen = false;
  };
  Option* find(const std::string& name);

  std::string command_, summary_;
  std::vector<Option> options_;
  std::string positional_meta_;
  std::vector<std::string>* positionals_ = nullptr;
  size_t max_positionals_ = 0;
  bool help_requested_ = false;
};

}  // namespace kvant::cli
