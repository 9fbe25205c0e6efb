#include "runtime/trace.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

namespace strata {
namespace {

using nlohmann::json;

// The events of one phase ("X", "i", "C", "M"), in file order.
std::vector<json> EventsWithPh(const json& trace, std::string_view ph) {
  std::vector<json> out;
  for (const json& e : trace.at("traceEvents")) {
    if (e.at("ph") == ph) out.push_back(e);
  }
  return out;
}

TEST(Trace, CompleteEventsHaveTheirFields) {
  Tracer t;
  t.Complete("read", "io", 3, 10.5, 2.25, {{"bytes", 4096}, {"offset", -7}});
  t.Complete("step", "train", 1, 1e6, 12345.125);
  const json j = json::parse(t.ToJson());
  const auto x = EventsWithPh(j, "X");
  ASSERT_EQ(x.size(), 2u);
  EXPECT_EQ(x[0]["name"], "read");
  EXPECT_EQ(x[0]["cat"], "io");
  EXPECT_EQ(x[0]["pid"], 1);
  EXPECT_EQ(x[0]["tid"], 3);
  EXPECT_EQ(x[0]["ts"].get<double>(), 10.5);
  EXPECT_EQ(x[0]["dur"].get<double>(), 2.25);
  EXPECT_EQ(x[0]["args"], (json{{"bytes", 4096}, {"offset", -7}}));
  EXPECT_EQ(x[1]["name"], "step");
  EXPECT_EQ(x[1]["tid"], 1);
  EXPECT_EQ(x[1]["ts"].get<double>(), 1e6);
  EXPECT_EQ(x[1]["dur"].get<double>(), 12345.125);
  EXPECT_FALSE(x[1].contains("args"));
  EXPECT_EQ(j["displayTimeUnit"], "ms");
  EXPECT_EQ(j["otherData"]["dropped"], 0);
  EXPECT_EQ(t.size(), 2u);
}

TEST(Trace, InstantCounterAndTrackNames) {
  Tracer t;
  t.SetTrackName(2, "uring queue");
  t.SetTrackName(0, "old");
  t.SetTrackName(0, "main");  // the last name wins
  t.Instant("checkpoint", "train", 0, 5);
  t.Counter("bytes in flight", 2, 6, "read", 1.5e9);
  const json j = json::parse(t.ToJson());

  const auto m = EventsWithPh(j, "M");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0]["name"], "thread_name");
  EXPECT_EQ(m[0]["tid"], 0);
  EXPECT_EQ(m[0]["args"]["name"], "main");
  EXPECT_EQ(m[1]["tid"], 2);
  EXPECT_EQ(m[1]["args"]["name"], "uring queue");

  const auto i = EventsWithPh(j, "i");
  ASSERT_EQ(i.size(), 1u);
  EXPECT_EQ(i[0]["name"], "checkpoint");
  EXPECT_EQ(i[0]["s"], "t");
  EXPECT_EQ(i[0]["ts"].get<double>(), 5);

  const auto c = EventsWithPh(j, "C");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0]["name"], "bytes in flight");
  EXPECT_EQ(c[0]["tid"], 2);
  EXPECT_EQ(c[0]["args"]["read"].get<double>(), 1.5e9);
  EXPECT_EQ(t.size(), 2u);  // track names are not events
}

TEST(Trace, StringsAreEscaped) {
  Tracer t;
  const std::string odd = "quote\" backslash\\ newline\n tab\t \x01 ünï";
  t.Complete(odd, odd, 0, 0, 1, {{"k\"ey", 1}});
  t.SetTrackName(0, odd);
  t.Instant("bad utf-8 \xff", "c", 0, 0);
  const json j = json::parse(t.ToJson());
  EXPECT_EQ(EventsWithPh(j, "X").at(0)["name"], odd);
  EXPECT_EQ(EventsWithPh(j, "X").at(0)["cat"], odd);
  EXPECT_EQ(EventsWithPh(j, "X").at(0)["args"]["k\"ey"], 1);
  EXPECT_EQ(EventsWithPh(j, "M").at(0)["args"]["name"], odd);
  EXPECT_EQ(EventsWithPh(j, "i").size(), 1u);
}

TEST(Trace, NonFiniteNumbersStayValidJson) {
  Tracer t;
  t.Counter("loss", 0, 1, "value", std::nan(""));
  const json j = json::parse(t.ToJson());
  EXPECT_TRUE(EventsWithPh(j, "C").at(0)["args"]["value"].is_null());
}

TEST(Trace, CapIsEnforcedAndDropsCounted) {
  Tracer t(5);
  for (int i = 0; i < 12; ++i) t.Complete("e", "c", 0, i, 1, {{"i", i}});
  t.SetTrackName(0, "still named");
  EXPECT_EQ(t.size(), 5u);
  EXPECT_EQ(t.dropped(), 7u);
  const json j = json::parse(t.ToJson());
  const auto x = EventsWithPh(j, "X");
  ASSERT_EQ(x.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(x[i]["args"]["i"], i);  // the first ones are kept
  EXPECT_EQ(j["otherData"]["dropped"], 7);
  EXPECT_EQ(EventsWithPh(j, "M").size(), 1u);

  Tracer none(0);
  none.Instant("x", "c", 0, 0);
  EXPECT_EQ(none.size(), 0u);
  EXPECT_EQ(none.dropped(), 1u);
  EXPECT_TRUE(json::parse(none.ToJson())["traceEvents"].empty());
}

TEST(Trace, TwoThreadsRecordConcurrently) {
  constexpr int kPerThread = 20000;
  for (size_t cap : {size_t{1} << 20, size_t{30000}}) {
    Tracer t(cap);
    auto record = [&t](int tid) {
      for (int i = 0; i < kPerThread; ++i) {
        if (i % 2) {
          t.Complete("work", "cpu", tid, t.NowMicros(), 1, {{"i", i}});
        } else {
          TraceSpan span(&t, "span", "cpu", tid);
          span.Arg("i", i);
        }
      }
    };
    std::thread a(record, 1), b(record, 2);
    a.join();
    b.join();
    const size_t total = 2 * kPerThread;
    EXPECT_EQ(t.size(), std::min(total, cap));
    EXPECT_EQ(t.size() + t.dropped(), total);
    const json j = json::parse(t.ToJson());
    EXPECT_EQ(j["traceEvents"].size(), t.size());
  }
}

TEST(Trace, SpanRecordsDurationAndArgs) {
  Tracer t;
  const double before = t.NowMicros();
  {
    TraceSpan span(&t, "decode", "cpu", 4);
    span.Arg("blocks", 12);
    span.Arg("bytes", int64_t{1} << 40);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const double after = t.NowMicros();
  const auto x = EventsWithPh(json::parse(t.ToJson()), "X");
  ASSERT_EQ(x.size(), 1u);
  EXPECT_EQ(x[0]["name"], "decode");
  EXPECT_EQ(x[0]["cat"], "cpu");
  EXPECT_EQ(x[0]["tid"], 4);
  EXPECT_GE(x[0]["ts"].get<double>(), before);
  EXPECT_GE(x[0]["dur"].get<double>(), 2000);
  EXPECT_LE(x[0]["ts"].get<double>() + x[0]["dur"].get<double>(), after);
  EXPECT_EQ(x[0]["args"], (json{{"blocks", 12}, {"bytes", int64_t{1} << 40}}));
}

TEST(Trace, SpanWithNullTracerDoesNothing) {
  TraceSpan span(nullptr, "nothing", "cpu", 0);
  for (int i = 0; i < 10; ++i) span.Arg("past the limit is fine too", i);  // no tracer: no check
}

TEST(Trace, WriteJsonIsReadableAndLeavesNoTemp) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("strata_trace_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "trace.json").string();
  Tracer t;
  t.SetTrackName(0, "main");
  t.Complete("step", "train", 0, 1, 2);
  ASSERT_TRUE(t.WriteJson(path).ok());
  t.Complete("step", "train", 0, 3, 4);
  ASSERT_TRUE(t.WriteJson(path).ok());  // replaces the old file
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  const json j = json::parse(ss.str());
  EXPECT_EQ(EventsWithPh(j, "X").size(), 2u);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  std::filesystem::remove_all(dir);
}

TEST(Trace, WriteJsonToUnwritablePathNamesIt) {
  Tracer t;
  t.Instant("x", "c", 0, 0);
  const std::string path = "/nonexistent_strata_dir/sub/trace.json";
  const Status s = t.WriteJson(path);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.IsIOError());
  EXPECT_NE(s.message().find(path), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("No such file or directory"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace strata
