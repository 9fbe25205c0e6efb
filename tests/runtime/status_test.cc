#include "runtime/status.h"

#include <gtest/gtest.h>

namespace strata {
namespace {

Status FailsWith(StatusCode code) { return Status(code, "field x: bad"); }

Status Propagates() {
  STRATA_RETURN_IF_ERROR(FailsWith(StatusCode::kCorruption));
  return Status::Internal("not reached");
}

TEST(Status, OkByDefault) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(Status, NamedKindsAndMessage) {
  EXPECT_TRUE(Status::InvalidArgument("lr").IsInvalidArgument());
  EXPECT_TRUE(Status::IOError("eio").IsIOError());
  EXPECT_TRUE(Status::Corruption("crc").IsCorruption());
  EXPECT_TRUE(Status::NotFound("f").IsNotFound());
  EXPECT_TRUE(Status::Unavailable("gpu").IsUnavailable());
  EXPECT_TRUE(Status::OutOfMemory("budget").IsOutOfMemory());
  EXPECT_EQ(Status::Corruption("state.bin: chunk 3 at offset 4096: checksum mismatch").ToString(),
            "Corruption: state.bin: chunk 3 at offset 4096: checksum mismatch");
}

TEST(Status, ReturnIfErrorPropagatesTheFirstError) {
  Status s = Propagates();
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_EQ(s.message(), "field x: bad");
}

TEST(Result, HoldsAValueOrAStatus) {
  Result<int> good(42);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 42);
  Result<int> bad(Status::NotFound("manifest"));
  EXPECT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().IsNotFound());
}

TEST(Result, OkStatusWithoutValueIsAnInternalError) {
  Result<int> r{Status::Ok()};
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
}

TEST(ResultDeathTest, ValueOfAnErrorAborts) {
  Result<int> bad(Status::IOError("x"));
  EXPECT_DEATH((void)bad.value(), "");
}

}  // namespace
}  // namespace strata
