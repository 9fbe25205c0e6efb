// The one place Asio (Boost 1.74, Asio 1.18) is included; everything else includes this header and
// writes asio::... inside namespace strata. Asio 1.18 has no experimental channels and no awaitable
// operators: runtime/channel.h is our channel.
#pragma once

// Before any Asio header: boost/asio/impl/awaitable.hpp uses std::exchange, and with g++ 12 nothing
// else brings <utility> in first.
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace strata {
namespace asio = boost::asio;
}  // namespace strata
