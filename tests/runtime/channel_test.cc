#include "runtime/channel.h"

#include <gtest/gtest.h>

#include <exception>
#include <memory>
#include <optional>
#include <set>
#include <vector>

namespace strata {
namespace {

using IntChannel = Channel<int>;

// co_spawn whose failures surface from io.run() instead of vanishing. A spawned coroutine holds work
// on the io_context until it ends, so tests that leave coroutines suspended use poll(), not run().
template <class Awaitable>
void Spawn(asio::io_context& io, Awaitable a) {
  asio::co_spawn(io, std::move(a), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
}

asio::awaitable<void> Yield() { co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable); }

asio::awaitable<void> Produce(IntChannel& ch, int begin, int end, bool close_at_end) {
  for (int i = begin; i < end; ++i) {
    EXPECT_TRUE(co_await ch.Send(i));
    EXPECT_LE(ch.size(), ch.capacity());
  }
  if (close_at_end) ch.Close();
}

asio::awaitable<void> Collect(IntChannel& ch, std::vector<int>& out) {
  while (std::optional<int> v = co_await ch.Receive()) out.push_back(*v);
}

TEST(Channel, CapacityBoundRespected) {
  asio::io_context io;
  IntChannel ch(io.get_executor(), 3);
  size_t max_seen = 0;
  int received = 0;
  Spawn(io, Produce(ch, 0, 100, /*close_at_end=*/true));
  Spawn(io, [](IntChannel& ch, size_t& max_seen, int& received) -> asio::awaitable<void> {
    for (;;) {
      co_await Yield();  // let the producer run ahead until it is stopped by the bound
      max_seen = std::max(max_seen, ch.size());
      EXPECT_LE(ch.size(), 3u);
      if (!co_await ch.Receive()) break;
      ++received;
    }
  }(ch, max_seen, received));
  io.run();
  EXPECT_EQ(received, 100);
  EXPECT_EQ(max_seen, 3u);  // the producer did fill the buffer, and never past it
}

TEST(Channel, FifoOrder) {
  asio::io_context io;
  IntChannel ch(io.get_executor(), 7);
  std::vector<int> got;
  Spawn(io, Produce(ch, 0, 1000, true));
  Spawn(io, Collect(ch, got));
  io.run();
  ASSERT_EQ(got.size(), 1000u);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(got[i], i);
}

asio::awaitable<void> SendOne(IntChannel& ch, int v, std::vector<int>& results) {
  results.push_back((co_await ch.Send(v)) ? v : -v - 100);
}

TEST(Channel, WaitingSendersAreServedFifo) {
  asio::io_context io;
  IntChannel ch(io.get_executor(), 1);
  ASSERT_TRUE(ch.TrySend(0));
  std::vector<int> sent;
  for (int i = 1; i <= 5; ++i) Spawn(io, SendOne(ch, i, sent));
  io.poll();  // all five senders are suspended, in spawn order
  EXPECT_TRUE(sent.empty());
  EXPECT_EQ(ch.size(), 1u);
  std::vector<int> got;
  for (int i = 0; i <= 5; ++i) got.push_back(*ch.TryReceive());  // each frees a slot for the next
  io.run();
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(sent, (std::vector<int>{1, 2, 3, 4, 5}));
}

TEST(Channel, WaitingReceiversAreServedFifo) {
  asio::io_context io;
  IntChannel ch(io.get_executor(), 2);
  std::vector<std::vector<int>> per(3);
  for (int r = 0; r < 3; ++r) {
    Spawn(io, [](IntChannel& ch, std::vector<int>& out) -> asio::awaitable<void> {
      if (auto v = co_await ch.Receive()) out.push_back(*v);
    }(ch, per[r]));
  }
  io.poll();
  for (int v = 10; v < 13; ++v) ASSERT_TRUE(ch.TrySend(int{v}));  // each handed to a waiter
  EXPECT_EQ(ch.size(), 0u);
  io.run();
  EXPECT_EQ(per, (std::vector<std::vector<int>>{{10}, {11}, {12}}));
}

TEST(Channel, CloseWakesBlockedSenders) {
  asio::io_context io;
  IntChannel ch(io.get_executor(), 1);
  std::vector<int> results;
  for (int i = 1; i <= 3; ++i) Spawn(io, SendOne(ch, i, results));
  io.poll();  // 1 is buffered, 2 and 3 wait
  EXPECT_EQ(results, (std::vector<int>{1}));
  ch.Close();
  io.run();
  EXPECT_EQ(results, (std::vector<int>{1, -102, -103}));  // dropped
  EXPECT_EQ(ch.TryReceive(), std::optional<int>(1));      // what was buffered drains
  EXPECT_EQ(ch.TryReceive(), std::nullopt);
}

TEST(Channel, CloseWakesBlockedReceivers) {
  asio::io_context io;
  IntChannel ch(io.get_executor(), 4);
  int woken = 0;
  for (int r = 0; r < 3; ++r) {
    Spawn(io, [](IntChannel& ch, int& woken) -> asio::awaitable<void> {
      EXPECT_EQ(co_await ch.Receive(), std::nullopt);
      ++woken;
    }(ch, woken));
  }
  io.poll();
  EXPECT_EQ(woken, 0);
  ch.Close();
  io.run();
  EXPECT_EQ(woken, 3);
}

TEST(Channel, DrainAfterCloseAndSendFails) {
  asio::io_context io;
  IntChannel ch(io.get_executor(), 5);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(ch.TrySend(int{i}));
  ch.Close();
  EXPECT_TRUE(ch.closed());
  EXPECT_FALSE(ch.TrySend(9));
  std::vector<int> got;
  bool sent_after_close = true;
  Spawn(io, [](IntChannel& ch, bool& sent) -> asio::awaitable<void> { sent = co_await ch.Send(7); }(
                ch, sent_after_close));
  Spawn(io, Collect(ch, got));
  io.run();
  EXPECT_FALSE(sent_after_close);
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(ch.size(), 0u);
}

TEST(Channel, TrySendTryReceive) {
  asio::io_context io;
  Channel<std::unique_ptr<int>> ch(io.get_executor(), 2);
  EXPECT_EQ(ch.capacity(), 2u);
  EXPECT_EQ(ch.TryReceive(), std::nullopt);
  auto a = std::make_unique<int>(1), b = std::make_unique<int>(2), c = std::make_unique<int>(3);
  EXPECT_TRUE(ch.TrySend(std::move(a)));
  EXPECT_TRUE(ch.TrySend(std::move(b)));
  EXPECT_FALSE(ch.TrySend(std::move(c)));
  ASSERT_NE(c, nullptr);  // a refused value is left with the caller
  EXPECT_EQ(ch.size(), 2u);
  EXPECT_EQ(**ch.TryReceive(), 1);
  EXPECT_EQ(**ch.TryReceive(), 2);
  EXPECT_EQ(ch.TryReceive(), std::nullopt);
}

TEST(Channel, ManyProducersAndConsumers) {
  constexpr int kProducers = 8, kConsumers = 5, kPerProducer = 1000;
  asio::io_context io;
  IntChannel ch(io.get_executor(), 4);
  std::vector<std::vector<int>> got(kConsumers);
  int producers_left = kProducers;
  for (int p = 0; p < kProducers; ++p) {
    Spawn(io, [](IntChannel& ch, int p, int& left) -> asio::awaitable<void> {
      co_await Produce(ch, p * kPerProducer, (p + 1) * kPerProducer, false);
      if (--left == 0) ch.Close();
    }(ch, p, producers_left));
  }
  for (int c = 0; c < kConsumers; ++c) Spawn(io, Collect(ch, got[c]));
  io.run();
  std::multiset<int> all;
  for (int c = 0; c < kConsumers; ++c) {
    EXPECT_FALSE(got[c].empty()) << "consumer " << c << " starved";
    all.insert(got[c].begin(), got[c].end());
    // One producer's values reach any one consumer in the order they were sent.
    std::vector<int> last(kProducers, -1);
    for (int v : got[c]) {
      EXPECT_GT(v, last[v / kPerProducer]);
      last[v / kPerProducer] = v;
    }
  }
  ASSERT_EQ(all.size(), size_t{kProducers * kPerProducer});
  int expect = 0;
  for (int v : all) EXPECT_EQ(v, expect++);  // each exactly once
}

TEST(Channel, CapacityOnePingPongDoesNotGrowTheStack) {
  constexpr int kRounds = 100000;  // inline resumption would overflow the stack long before this
  asio::io_context io;
  IntChannel ping(io.get_executor(), 1), pong(io.get_executor(), 1);
  int last = -1;
  Spawn(io, [](IntChannel& ping, IntChannel& pong, int& last) -> asio::awaitable<void> {
    for (int i = 0; i < kRounds; ++i) {
      EXPECT_TRUE(co_await ping.Send(i));
      std::optional<int> v = co_await pong.Receive();
      EXPECT_EQ(v, std::optional<int>(i + 1));
      last = *v;
    }
    ping.Close();
  }(ping, pong, last));
  Spawn(io, [](IntChannel& ping, IntChannel& pong) -> asio::awaitable<void> {
    while (std::optional<int> v = co_await ping.Receive()) EXPECT_TRUE(co_await pong.Send(*v + 1));
  }(ping, pong));
  io.run();
  EXPECT_EQ(last, kRounds);
}

TEST(Channel, MoveOnlyValues) {
  asio::io_context io;
  Channel<std::unique_ptr<int>> ch(io.get_executor(), 1);
  int sum = 0;
  Spawn(io, [](Channel<std::unique_ptr<int>>& ch) -> asio::awaitable<void> {
    for (int i = 1; i <= 10; ++i) EXPECT_TRUE(co_await ch.Send(std::make_unique<int>(i)));
    ch.Close();
  }(ch));
  Spawn(io, [](Channel<std::unique_ptr<int>>& ch, int& sum) -> asio::awaitable<void> {
    while (std::optional<std::unique_ptr<int>> v = co_await ch.Receive()) sum += **v;
  }(ch, sum));
  io.run();
  EXPECT_EQ(sum, 55);
}

// Counts destructions, to prove a suspended coroutine's frame was freed, not leaked.
struct Counted {
  explicit Counted(int* n) : n(n) {}
  ~Counted() { ++*n; }
  int* n;
};

asio::awaitable<void> WaitToReceive(Channel<std::unique_ptr<int>>& ch, int* destroyed) {
  Counted c(destroyed);
  co_await ch.Receive();
  ADD_FAILURE() << "resumed after its channel was destroyed";
}

asio::awaitable<void> WaitToSend(Channel<std::unique_ptr<int>>& ch, int* destroyed) {
  Counted c(destroyed);
  co_await ch.Send(std::make_unique<int>(1));
  ADD_FAILURE() << "resumed after its channel was destroyed";
}

TEST(Channel, DestroyedWithSuspendedWaitersFreesThem) {
  int destroyed = 0;
  {
    asio::io_context io;
    auto empty = std::make_unique<Channel<std::unique_ptr<int>>>(io.get_executor(), 2);
    auto full = std::make_unique<Channel<std::unique_ptr<int>>>(io.get_executor(), 1);
    ASSERT_TRUE(full->TrySend(std::make_unique<int>(0)));
    for (int i = 0; i < 3; ++i) Spawn(io, WaitToReceive(*empty, &destroyed));
    for (int i = 0; i < 2; ++i) Spawn(io, WaitToSend(*full, &destroyed));
    io.poll();
    EXPECT_EQ(destroyed, 0);
    empty.reset();
    full.reset();
    io.run();  // Asio unwinds the frames on the executor
    EXPECT_EQ(destroyed, 5);
  }
  // Channel destroyed just before its io_context, which never runs again.
  destroyed = 0;
  {
    asio::io_context io;
    Channel<std::unique_ptr<int>> ch(io.get_executor(), 1);
    for (int i = 0; i < 4; ++i) Spawn(io, WaitToReceive(ch, &destroyed));
    io.poll();
  }
  EXPECT_EQ(destroyed, 4);
}

}  // namespace
}  // namespace strata
