// tests/test_support.cpp — implementation of the shared test helpers.
#include "test_support.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "quant/quant.h"

namespace kvant::test {

std::string shared_data() { return KVANT_SHARED_DATA; }

std::vector<float> random_row(size_t n, std::mt19937& rng, float mean) {
  std::normal_distribution<float> dist(mean, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  for (int i = 0; i < 8; ++i) v[rng() % n] *= 8.0f;
  return v;
}

QuantisedWeights quantised_weights(GgmlType type, int64_t n_in, int n_out, std::mt19937& rng) {
  const QuantTraits* t = quant_traits(type);
  QuantisedWeights w;
  w.row_bytes = size_t(n_in / t->block_elems) * t->block_bytes;
  w.bytes.resize(w.row_bytes * size_t(n_out));
  w.values.resize(size_t(n_in) * size_t(n_out));
  for (int j = 0; j < n_out; ++j) {
    const std::vector<float> f = random_row(size_t(n_in), rng, 0.05f * float(j % 3));
    t->quantize_row(f.data(), w.bytes.data() + size_t(j) * w.row_bytes, n_in);
    t->dequantize_row(w.bytes.data() + size_t(j) * w.row_bytes, w.values.data() + size_t(j) * n_in, n_in);
  }
  return w;
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

std::string data_file(const std::string& relative) {
  std::string path = shared_data() + "/" + relative;
  return file_exists(path) ? path : std::string();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::string s = read_file(path);
  return std::vector<uint8_t>(s.begin(), s.end());
}

std::string temp_dir() {
  char tmpl[] = "/tmp/kvant-test-XXXXXX";
  char* dir = mkdtemp(tmpl);
  return dir ? std::string(dir) : std::string("/tmp");
}

CliResult run_cli(const std::string& args) {
  const std::string dir = temp_dir();
  const std::string out_path = dir + "/stdout", err_path = dir + "/stderr";
  const std::string cmd = std::string(KVANT_CLI_PATH) + " " + args + " >" + out_path + " 2>" + err_path;
  CliResult r;
  int status = std::system(cmd.c_str());
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  std::remove(out_path.c_str());
  std::remove(err_path.c_str());
  rmdir(dir.c_str());
  return r;
}

}  // namespace kvant::test
