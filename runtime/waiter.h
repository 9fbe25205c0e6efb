// The bridge from callbacks to C++20 coroutines on Asio: a suspended coroutine's completion handler
// for void(Arg), type-erased, so a queue of waiters can hold coroutines suspended at different
// places. Resume posts the resumption to the coroutine's own executor (never resumes inline), so
// it may be called from any thread, and a waker never runs the waiter's code on its own stack.
// runtime/channel.h and the offload engine's I/O and compute completions are built on it.
#pragma once

#include <memory>
#include <type_traits>
#include <utility>

#include "runtime/asio.h"

namespace strata {

template <class Arg>
struct Waiter {
  virtual ~Waiter() = default;
  virtual void Resume(Arg arg) = 0;
};

template <class Arg>
using WaiterPtr = std::unique_ptr<Waiter<Arg>>;

// From the handler that asio::async_initiate hands its initiation function.
template <class Arg, class Handler>
WaiterPtr<Arg> MakeWaiter(Handler&& handler) {
  struct Impl final : Waiter<Arg> {
    explicit Impl(std::decay_t<Handler>&& h) : handler(std::move(h)) {}
    void Resume(Arg arg) override {
      auto ex = asio::get_associated_executor(handler);
      asio::post(ex, [h = std::move(handler), a = std::move(arg)]() mutable { std::move(h)(std::move(a)); });
    }
    std::decay_t<Handler> handler;
  };
  return std::make_unique<Impl>(std::move(handler));
}

}  // namespace strata
