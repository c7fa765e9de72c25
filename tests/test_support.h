// tests/test_support.h — helpers shared by tests: the shared-data path, skipping when it is absent,
// running the kvant CLI and reading files.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kvant::test {

// ../shared/data as seen from the source tree (absolute path).
std::string shared_data();
// Path under shared data; empty string when the file does not exist.
std::string data_file(const std::string& relative);
bool file_exists(const std::string& path);
std::string read_file(const std::string& path);
std::vector<uint8_t> read_bytes(const std::string& path);

// Runs `kvant ARGS` (shell-quoted by the caller), capturing stdout and stderr separately.
struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
CliResult run_cli(const std::string& args);

// A fresh temporary directory for the current test (removed at process exit is not guaranteed).
std::string temp_dir();

}  // namespace kvant::test

// Skip the current test with a message when a shared-data file is missing.
#define KVANT_REQUIRE_DATA(var, relative)                                              \
  const std::string var = ::kvant::test::data_file(relative);                          \
  if (var.empty()) GTEST_SKIP() << "shared data absent: " << ::kvant::test::shared_data() \
                                << "/" << (relative) << " (tests that need it are skipped)"
