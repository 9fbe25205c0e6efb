// The one clock of strata's timings: seconds on the monotonic clock (steady_clock), as a double.
// Only differences mean anything; wall-clock time (for file names and logs) is std::time's.
#pragma once

#include <chrono>

namespace strata {

inline double MonotonicSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace strata
