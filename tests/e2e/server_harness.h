// tests/e2e/server_harness.h — for server tests: start `kvant serve --port 0` as a child process and
// read its port, and a tiny raw-socket HTTP/1.1 client (Connection: close, chunked decoding, SSE events)
// that can also send deliberately malformed requests.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace kvant::test {

struct HttpResponse {
  int status = 0;  // 0: no response
  std::string headers, body;
};

// Connects to 127.0.0.1:port; -1 on failure.
inline int http_connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{60, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline bool send_all(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += size_t(n);
  }
  return true;
}

inline std::string decode_chunked(const std::string& body) {
  std::string out;
  size_t pos = 0;
  while (pos < body.size()) {
    const size_t eol = body.find("\r\n", pos);
    if (eol == std::string::npos) break;
    const size_t len = std::stoul(body.substr(pos, eol - pos), nullptr, 16);
    if (len == 0) break;
    out += body.substr(eol + 2, len);
    pos = eol + 2 + len + 2;
  }
  return out;
}

inline HttpResponse parse_response(const std::string& raw) {
  HttpResponse r;
  const size_t head_end = raw.find("\r\n\r\n");
  if (raw.compare(0, 9, "HTTP/1.1 ") != 0 || head_end == std::string::npos) return r;
  r.status = std::stoi(raw.substr(9, 3));
  r.headers = raw.substr(0, head_end);
  r.body = raw.substr(head_end + 4);
  std::string lower = r.headers;
  for (char& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (lower.find("transfer-encoding: chunked") != std::string::npos) r.body = decode_chunked(r.body);
  return r;
}

// Sends raw bytes and reads until the server closes the connection.
inline HttpResponse http_raw(int port, const std::string& request) {
  const int fd = http_connect(port);
  if (fd < 0) return {};
  std::string raw;
  if (send_all(fd, request)) {
    char buf[8192];
    for (;;) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      raw.append(buf, size_t(n));
    }
  }
  ::close(fd);
  return parse_response(raw);
}

inline std::string http_request_text(const std::string& method, const std::string& path, const std::string& body,
                                     const std::string& extra_headers = "") {
  std::string r = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + extra_headers;
  if (!body.empty() || method == "POST") {
    r += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  return r + "\r\n" + body;
}

inline HttpResponse http(int port, const std::string& method, const std::string& path, const std::string& body = "") {
  return http_raw(port, http_request_text(method, path, body));
}

// The payloads of `data: ...` SSE events, in order.
inline std::vector<std::string> sse_events(const std::string& body) {
  std::vector<std::string> events;
  size_t pos = 0;
  while (pos < body.size()) {
    const size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) break;
    const std::string event = body.substr(pos, end - pos);
    if (event.compare(0, 6, "data: ") == 0) events.push_back(event.substr(6));
    pos = end + 2;
  }
  return events;
}

// `kvant serve ... --port 0` as a child; stops it (SIGTERM) on destruction.
class ServerProcess {
 public:
  // Returns false (with `error`) when it does not come up; `unsupported` when built without HTTP.
  bool start(const std::string& cli, const std::vector<std::string>& args) {
    int out_pipe[2];
    if (pipe(out_pipe) != 0) return false;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out_pipe[1], 1);
      dup2(out_pipe[1], 2);
      close(out_pipe[0]);
      close(out_pipe[1]);
      std::vector<char*> argv;
      argv.push_back(const_cast<char*>(cli.c_str()));
      static const char* serve = "serve";
      argv.push_back(const_cast<char*>(serve));
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(cli.c_str(), argv.data());
      _exit(127);
    }
    close(out_pipe[1]);
    out_ = fdopen(out_pipe[0], "r");
    char line[4096];
    while (out_ != nullptr && std::fgets(line, sizeof line, out_) != nullptr) {
      const std::string s = line;
      log_ += s;
      const std::string marker = "listening on http://127.0.0.1:";
      if (const size_t at = s.find(marker); at != std::string::npos) {
        port_ = std::stoi(s.substr(at + marker.size()));
        // Keep draining the child's output so it never blocks on a full pipe.
        drain_ = std::thread([f = out_] {
          char b[4096];
          while (std::fgets(b, sizeof b, f) != nullptr) {
          }
        });
        return true;
      }
      if (s.find("built without HTTP server support") != std::string::npos) unsupported_ = true;
    }
    return false;
  }
  ~ServerProcess() { stop(); }
  int stop() {
    int status = -1;
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, &status, 0);
      pid_ = -1;
    }
    if (drain_.joinable()) drain_.join();
    if (out_ != nullptr) std::fclose(out_), out_ = nullptr;
    return status;
  }
  int port() const { return port_; }
  bool unsupported() const { return unsupported_; }
  const std::string& log() const { return log_; }

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
  int port_ = 0;
  bool unsupported_ = false;
  std::string log_;
  std::thread drain_;
};

}  // namespace kvant::test
