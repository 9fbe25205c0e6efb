// A bounded channel between C++20 coroutines, so that back-pressure in a pipeline is structural: a
// producer that runs ahead suspends in Send until a consumer makes room.
//
// One executor: the channel has no lock. Every call (Send, Receive, Try*, Close, the accessors and the
// destructor) must come from the thread running the executor passed to the constructor, e.g. a
// single-threaded io_context. Other threads post to that executor first.
//
// Waiters are resumed with asio::post, never inline from the call that satisfies them, so a long
// ping-pong cannot grow the stack. Waiting senders, and waiting receivers, are served in FIFO order.
// A co_spawned coroutine holds work on its io_context until it ends, so a pipeline that deadlocks on
// its channels shows up as io_context::run() never returning.
//
// Invariants: senders wait only while the buffer is full; receivers wait only while it is empty. A
// sender that is woken has already had its value put in the buffer; a receiver that is woken has
// already been handed its value, so no third party can steal it between the post and the resume.
//
// Destroying a Channel with suspended waiters destroys their coroutine frames without resuming them
// (Asio posts the unwinding to the executor). So the Channel must not outlive its io_context, and
// should not live inside a coroutine frame that waits on it (that would be a cycle that never ends).
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <utility>

#include "runtime/asio.h"
#include "runtime/status.h"
#include "runtime/waiter.h"

namespace strata {

template <class T>
class Channel {
 public:
  // capacity >= 1.
  Channel(asio::any_io_executor ex, size_t capacity) : ex_(std::move(ex)), capacity_(capacity) {
    STRATA_CHECK(capacity >= 1);
  }
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // Suspends while full. Returns false (value dropped) if the channel is or becomes closed.
  asio::awaitable<bool> Send(T value) {
    if (closed_) co_return false;
    if (TrySend(std::move(value))) co_return true;
    co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(bool)>(
        [this, &value](auto handler) {
          senders_.push_back({std::move(value), MakeWaiter<bool>(std::move(handler))});
        },
        asio::use_awaitable);
  }

  // Non-blocking: true and moves the value in if there is room (or a waiting receiver); otherwise
  // false and `value` is left untouched.
  bool TrySend(T&& value) {
    if (closed_) return false;
    if (!receivers_.empty()) {  // the buffer is empty: hand over directly
      Resume(PopFront(receivers_), std::optional<T>(std::move(value)));
      return true;
    }
    if (buffer_.size() >= capacity_) return false;
    buffer_.push_back(std::move(value));
    return true;
  }

  // Suspends while empty; std::nullopt once closed and drained.
  asio::awaitable<std::optional<T>> Receive() {
    if (std::optional<T> v = TryReceive()) co_return std::move(v);
    if (closed_) co_return std::nullopt;
    co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(std::optional<T>)>(
        [this](auto handler) { receivers_.push_back(MakeWaiter<std::optional<T>>(std::move(handler))); },
        asio::use_awaitable);
  }

  // Non-blocking: the oldest value, or std::nullopt if the buffer is empty.
  std::optional<T> TryReceive() {
    if (buffer_.empty()) return std::nullopt;  // capacity >= 1, so no sender is waiting either
    std::optional<T> v(std::move(buffer_.front()));
    buffer_.pop_front();
    if (!senders_.empty()) {  // the buffer was full: the oldest waiting sender takes the free slot
      PendingSend s = PopFront(senders_);
      buffer_.push_back(std::move(s.value));
      Resume(std::move(s.waiter), true);
    }
    return v;
  }

  // Wakes every waiter: waiting senders get false (their values are dropped), waiting receivers get
  // std::nullopt. Later Sends return false; Receives drain what is buffered, then get std::nullopt.
  void Close() {
    if (closed_) return;
    closed_ = true;
    while (!senders_.empty()) Resume(PopFront(senders_).waiter, false);
    while (!receivers_.empty()) Resume(PopFront(receivers_), std::optional<T>());
  }

  bool closed() const { return closed_; }
  size_t size() const { return buffer_.size(); }  // buffered values, not counting waiting senders
  size_t capacity() const { return capacity_; }
  const asio::any_io_executor& get_executor() const { return ex_; }

 private:
  template <class Arg>
  static void Resume(WaiterPtr<Arg> waiter, Arg arg) {
    waiter->Resume(std::move(arg));
  }

  template <class Q>
  static typename Q::value_type PopFront(Q& q) {
    typename Q::value_type v = std::move(q.front());
    q.pop_front();
    return v;
  }

  struct PendingSend {
    T value;
    WaiterPtr<bool> waiter;
  };

  asio::any_io_executor ex_;
  size_t capacity_;
  bool closed_ = false;
  std::deque<T> buffer_;                           // size() <= capacity_
  std::deque<PendingSend> senders_;                // non-empty only while buffer_ is full
  std::deque<WaiterPtr<std::optional<T>>> receivers_;  // non-empty only while buffer_ is empty
};

}  // namespace strata
