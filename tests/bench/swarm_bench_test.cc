// `strata bench swarm` at a small size: every figure is there and sane, the ratios are what the
// codec promises, the bit-exact check can fail, and bad options are refused by name. No timing
// assertions: the figures depend on the machine.
#include "bench/swarm_bench.h"

#include <gtest/gtest.h>

#include <string>

namespace strata::bench {
namespace {

SwarmBenchOptions Small() {
  SwarmBenchOptions o;
  o.params = (uint64_t{3} << 20) + 7;  // 3 Mi + 7: the last chunk is 7 elements, its block partial
  o.chunk = 256 * 257;                 // 65792 elements: 48 chunks
  o.window = 3;
  o.streams = {1, 2};
  o.rounds = 1;
  o.timeout_s = 30;  // a hung transfer fails the test instead of hanging it
  o.quiet = true;
  return o;
}

TEST(SwarmBench, SmallRunReportsEveryFigure) {
  Result<nlohmann::json> r = RunSwarmBench(Small());
  ASSERT_TRUE(r.ok()) << r.status();
  const nlohmann::json& j = *r;
  for (const char* k : {"uplink_bytes_ratio", "downlink_bytes_ratio", "exchange_GBps", "zmq_raw_GBps",
                        "zmq_plain_GBps", "exchange_vs_raw", "exchange_fp32_equiv_GBps", "exchange_with_encode_GBps",
                        "exchange_vs_raw_paired", "cpu_cost_vs_raw", "exchange_vs_raw_bound_shared_cores",
                        "exchange_vs_raw_bound_separate_hosts"}) {
    ASSERT_TRUE(j.contains(k)) << k;
    EXPECT_GT(j[k].get<double>(), 0.0) << k;
  }
  for (const char* k : {"streams", "params", "chunk", "window", "rounds", "per_round", "per_streams", "machine", "date",
                        "exchange_breakdown", "bit_exact"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["params"].get<uint64_t>(), (uint64_t{3} << 20) + 7);
  EXPECT_EQ(j["chunk"].get<uint64_t>(), 65792u);
  EXPECT_EQ(j["chunks"].get<uint64_t>(), 48u);
  EXPECT_EQ(j["window"].get<uint32_t>(), 3u);
  EXPECT_EQ(j["rounds"].get<int>(), 1);
  const int streams = j["streams"].get<int>();
  EXPECT_TRUE(streams == 1 || streams == 2) << streams;
  EXPECT_TRUE(j["bit_exact"].get<bool>());
  EXPECT_FALSE(j["machine"]["cpu"].get<std::string>().empty());
  EXPECT_GE(j["machine"]["cores"].get<int>(), 1);

  // Bytes: codes (1 per value) + absmax (4 per 256) + 192 bytes of frame per chunk, over 4 per value.
  const double n = static_cast<double>((uint64_t{3} << 20) + 7);
  const double expect = (n + 4.0 * 12289 + 48 * 192) / (4 * n);
  for (const char* k : {"uplink_bytes_ratio", "downlink_bytes_ratio"}) {
    const double v = j[k].get<double>();
    EXPECT_GE(v, 0.25) << k;
    EXPECT_LE(v, 0.27) << k;
    EXPECT_DOUBLE_EQ(v, expect) << k;
  }
  EXPECT_EQ(j["uplink_ack_bytes"].get<uint64_t>(), 48u * 192u);

  ASSERT_EQ(j["per_streams"].size(), 2u);
  for (const auto& e : j["per_streams"]) {
    EXPECT_GT(e["exchange_GBps"].get<double>(), 0.0);
    EXPECT_GT(e["zmq_raw_GBps"].get<double>(), 0.0);
    EXPECT_GT(e["wall_s"].get<double>(), 0.0);
    EXPECT_GT(e["sign_s"].get<double>(), 0.0);
    EXPECT_GT(e["verify_s"].get<double>(), 0.0);
  }
  ASSERT_EQ(j["per_round"].size(), 1u);
  for (const char* k : {"zmq_plain_s1_GBps", "zmq_raw_s1_GBps", "zmq_raw_s2_GBps", "exchange_s1_GBps",
                        "exchange_s2_GBps"})
    EXPECT_GT(j["per_round"][0][k].get<double>(), 0.0) << k;
  // The exchange figure is the better stream count's.
  const double best = j["exchange_GBps"].get<double>();
  for (const auto& e : j["per_streams"]) EXPECT_LE(e["exchange_GBps"].get<double>(), best);
  EXPECT_FALSE(FormatSwarmBench(j).empty());
}

// A single element, one chunk, one stream (and a second stream with nothing to carry), over ipc.
TEST(SwarmBench, OneElementOverIpc) {
  SwarmBenchOptions o = Small();
  o.params = 1;
  o.chunk = 256;
  o.window = 1;
  o.transport = SwarmTransport::kIpc;
  Result<nlohmann::json> r = RunSwarmBench(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)["chunks"].get<uint64_t>(), 1u);
  // 1 code + 4 absmax + 192 framing over 4 bytes: framing dominates a tiny tensor.
  EXPECT_DOUBLE_EQ((*r)["uplink_bytes_ratio"].get<double>(), (1 + 4 + 192) / 4.0);
}

TEST(SwarmBench, ReceiverMismatchFailsTheBench) {
  SwarmBenchOptions o = Small();
  o.params = 1000;
  o.streams = {1};
  o.inject_mismatch = true;
  Result<nlohmann::json> r = RunSwarmBench(o);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsCorruption()) << r.status();
  EXPECT_NE(r.status().message().find("differs from the sender"), std::string::npos) << r.status();
}

TEST(SwarmBench, BadOptionsAreRefusedByName) {
  struct Case {
    const char* flag;
    void (*edit)(SwarmBenchOptions&);
  };
  const Case cases[] = {
      {"--params", [](SwarmBenchOptions& o) { o.params = 0; }},
      {"--chunk", [](SwarmBenchOptions& o) { o.chunk = 1000; }},
      {"--chunk", [](SwarmBenchOptions& o) { o.chunk = 255; }},
      {"--chunk", [](SwarmBenchOptions& o) { o.chunk = 0; }},
      {"--chunk", [](SwarmBenchOptions& o) { o.chunk = uint64_t{1} << 26; }},  // payload over 64 MiB
      {"--window", [](SwarmBenchOptions& o) { o.window = 0; }},
      {"--window", [](SwarmBenchOptions& o) { o.window = 257; }},
      {"--streams", [](SwarmBenchOptions& o) { o.streams = {0}; }},
      {"--streams", [](SwarmBenchOptions& o) { o.streams = {}; }},
      {"--rounds", [](SwarmBenchOptions& o) { o.rounds = 0; }},
  };
  for (const Case& c : cases) {
    SwarmBenchOptions o = Small();
    c.edit(o);
    Result<nlohmann::json> r = RunSwarmBench(o);
    ASSERT_FALSE(r.ok()) << c.flag;
    EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status();
    EXPECT_NE(r.status().message().find(c.flag), std::string::npos) << r.status();
  }
}

TEST(SwarmBench, ParseStreamCounts) {
  Result<std::vector<int>> a = ParseStreamCounts("auto");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, (std::vector<int>{1, 2}));
  Result<std::vector<int>> l = ParseStreamCounts("1,3,16");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(*l, (std::vector<int>{1, 3, 16}));
  for (const char* bad : {"", "0", "17", "1,,2", "x", "2x", "-1", "1,"}) {
    Result<std::vector<int>> r = ParseStreamCounts(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("--streams"), std::string::npos) << bad;
    }
  }
}

}  // namespace
}  // namespace strata::bench
