// The payload (everything after the slot header) of every committed chunk: two runs that must
// agree bit for bit are compared with this (the headers differ: each run has its own run id).
#pragma once

#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "offload/offload_engine.h"

namespace strata::offload::testing {

inline std::vector<std::vector<uint8_t>> Payloads(OffloadEngine* e) {
  std::vector<std::vector<uint8_t>> out;
  for (uint64_t c = 0; c < e->geometry().n_chunks(); ++c) {
    auto s = e->ReadCommittedSlot(c);
    EXPECT_TRUE(s.ok()) << s.status();
    if (s.ok()) out.emplace_back(s->begin() + kSlotHeaderBytes, s->end());
  }
  return out;
}

}  // namespace strata::offload::testing
