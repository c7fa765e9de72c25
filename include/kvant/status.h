// kvant/status.h — error values used across the public API and the library: Status and Expected<T>.
// Errors carry a human-readable message with context (file, field, value); no exceptions cross the API.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace kvant {

// Success, or a failure with a message that names what was wrong ("model.gguf: tensor X has type q3_k ...").
class Status {
 public:
  Status() = default;
  static Status ok() { return Status(); }
  static Status error(std::string message) { return Status(std::move(message), true); }

  bool is_ok() const { return !failed_; }
  explicit operator bool() const { return !failed_; }
  const std::string& message() const { return message_; }

  // Prefixes context to the message: Status::error("bad").with_context("file.gguf") -> "file.gguf: bad".
  Status with_context(const std::string& context) const {
    if (!failed_) return *this;
    return Status(context + ": " + message_, true);
  }

 private:
  Status(std::string message, bool failed) : message_(std::move(message)), failed_(failed) {}
  std::string message_;
  bool failed_ = false;
};

// A value or an error Status. Access to value() on an error is a programmer mistake (asserted).
template <typename T>
class Expected {
 public:
  Expected(T value) : storage_(std::move(value)) {}  // NOLINT: implicit by design
  Expected(Status error) : storage_(std::move(error)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(storage_).is_ok() && "Expected constructed from an ok Status");
  }

  bool has_value() const { return storage_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { assert(has_value()); return std::get<0>(storage_); }
  const T& value() const& { assert(has_value()); return std::get<0>(storage_); }
  T&& value() && { assert(has_value()); return std::get<0>(std::move(storage_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Status& status() const {
    static const Status ok_status;
    return has_value() ? ok_status : std::get<Status>(storage_);
  }
  const std::string& error() const { return status().message(); }

 private:
  std::variant<T, Status> storage_;
};

}  // namespace kvant

// Propagate an error Status from an expression returning Status.
#define KVANT_RETURN_IF_ERROR(expr)              \
  do {                                           \
    ::kvant::Status kvant_status_ = (expr);      \
    if (!kvant_status_.is_ok()) return kvant_status_; \
  } while (0)

#define KVANT_CONCAT_INNER_(a, b) a##b
#define KVANT_CONCAT_(a, b) KVANT_CONCAT_INNER_(a, b)
// Assign the value of an Expected expression to `lhs`, or return its error Status.
#define KVANT_ASSIGN_OR_RETURN(lhs, expr) \
  KVANT_ASSIGN_OR_RETURN_IMPL_(KVANT_CONCAT_(kvant_expected_, __LINE__), lhs, expr)
#define KVANT_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.has_value()) return tmp.status();         \
  lhs = std::move(tmp).value()
