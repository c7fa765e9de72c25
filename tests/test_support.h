// tests/test_support.h — helpers shared by tests: the shared-data path, skipping when it is absent,
// running the kvant CLI and reading files, random weight rows for kernel tests.
#pragma once

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "quant/ggml_type.h"

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

// n normal floats (mean, sd 1) with 8 of them scaled by 8: the outliers real weight and activation rows have.
std::vector<float> random_row(size_t n, std::mt19937& rng, float mean);

// n_out random rows (means cycling through 0, 0.05, 0.1) quantised to a weight format, and their
// dequantised values: the weight side of a kernel-vs-reference test.
struct QuantisedWeights {
  size_t row_bytes = 0;
  std::vector<uint8_t> bytes;  // [n_out][row_bytes]
  std::vector<float> values;   // [n_out][n_in]
};
QuantisedWeights quantised_weights(GgmlType type, int64_t n_in, int n_out, std::mt19937& rng);

// A fresh temporary directory for the current test (removed at process exit is not guaranteed).
std::string temp_dir();

}  // namespace kvant::test

// Skip the current test with a message when a shared-data file is missing.
#define KVANT_REQUIRE_DATA(var, relative)                                              \
  const std::string var = ::kvant::test::data_file(relative);                          \
  if (var.empty()) GTEST_SKIP() << "shared data absent: " << ::kvant::test::shared_data() \
                                << "/" << (relative) << " (tests that need it are skipped)"
