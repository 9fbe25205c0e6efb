// Status and Result: expected failures travel as values (leveldb's habit), with a named kind and a
// message that names the file, offset, argument or peer. [[nodiscard]] so a dropped error does not
// compile (the build sets -Werror=unused-result).
#pragma once

#include <cstdlib>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

namespace strata {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument,  // a caller passed something wrong: a flag, a size, a hyperparameter
  kIOError,          // the OS said no: EIO, ENOSPC, a short write that cannot be finished
  kCorruption,       // bytes on disk or on the wire fail a magic, size or checksum check
  kNotFound,         // a file, key or peer that should exist does not
  kUnavailable,      // a resource is absent here (no GPU, no CPU feature); try elsewhere
  kOutOfMemory,      // a budget or an allocation could not be met
  kInternal,         // a broken invariant that is not the caller's fault
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status IOError(std::string m) { return {StatusCode::kIOError, std::move(m)}; }
  static Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status OutOfMemory(std::string m) { return {StatusCode::kOutOfMemory, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  bool IsInvalidArgument() const { return code_ == StatusCode::kInvalidArgument; }
  bool IsIOError() const { return code_ == StatusCode::kIOError; }
  bool IsCorruption() const { return code_ == StatusCode::kCorruption; }
  bool IsNotFound() const { return code_ == StatusCode::kNotFound; }
  bool IsUnavailable() const { return code_ == StatusCode::kUnavailable; }
  bool IsOutOfMemory() const { return code_ == StatusCode::kOutOfMemory; }

  // "InvalidArgument: lr must be finite and >= 0 (got nan)"
  std::string ToString() const;

  // The same kind, with what the caller was doing in front: "--init: model.safetensors: ...".
  // An OK status stays OK.
  Status WithContext(std::string_view context) const {
    if (ok()) return *this;
    return Status(code_, std::string(context) + ": " + message_);
  }

  // Deliberately ignore a status (say why at the call site).
  void IgnoreError() const {}

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// For logs and test failure messages.
std::ostream& operator<<(std::ostream& os, const Status& s);

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Status status)  // NOLINT
      : status_(status.ok() ? Status::Internal("Result constructed from an OK status without a value")
                            : std::move(status)) {}

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { check(); return *value_; }
  const T& value() const& { check(); return *value_; }
  T&& value() && { check(); return std::move(*value_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  void check() const {
    if (!status_.ok()) std::abort();  // a bug: value() on an error
  }
  Status status_;
  std::optional<T> value_;
};

}  // namespace strata

// Propagates a non-OK Status to the caller.
#define STRATA_RETURN_IF_ERROR(expr)          \
  do {                                        \
    ::strata::Status strata_status_ = (expr); \
    if (!strata_status_.ok()) return strata_status_; \
  } while (0)

// Declares (or assigns) lhs from a Result, or propagates its Status to the caller:
//   STRATA_ASSIGN_OR_RETURN(auto model, Gpt2::Create(cfg, threads));
// It is several statements: under an `if`, use braces.
#define STRATA_ASSIGN_OR_RETURN(lhs, rexpr) \
  STRATA_ASSIGN_OR_RETURN_IMPL_(STRATA_STATUS_CONCAT_(strata_result_, __LINE__), lhs, rexpr)
#define STRATA_STATUS_CONCAT_INNER_(a, b) a##b
#define STRATA_STATUS_CONCAT_(a, b) STRATA_STATUS_CONCAT_INNER_(a, b)
#define STRATA_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                  \
  if (!tmp.ok()) return tmp.status();                  \
  lhs = std::move(tmp).value()

// Always-on check for bugs (never for syscall results or bad input).
#define STRATA_CHECK(cond)                                                                 \
  do {                                                                                     \
    if (!(cond)) ::strata::internal::CheckFailed(#cond, __FILE__, __LINE__);               \
  } while (0)

namespace strata::internal {
[[noreturn]] void CheckFailed(const char* cond, const char* file, int line);
}
