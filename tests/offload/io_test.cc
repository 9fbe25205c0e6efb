// The two I/O layers on real files: io_uring and POSIX backends with O_DIRECT, and IoQueue's
// handling of every kind of completion (error, -EAGAIN, short transfer, end of file), driven by
// the fault injector wrapped around the real backend.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <random>

#include <gtest/gtest.h>

#include "offload/io.h"
#include "tests/offload/fault_backend.h"
#include "tests/offload/temp_dir.h"

namespace strata::offload {
namespace {

using testing::FaultCounters;
using testing::FaultRules;
using testing::Faulty;

struct Aligned {
  explicit Aligned(size_t n) : n(n) {
    p = static_cast<uint8_t*>(::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  }
  ~Aligned() { ::munmap(p, n); }
  uint8_t* p;
  size_t n;
};

int OpenDirect(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0644);
  if (fd < 0 && errno == EINVAL) fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  return fd;
}

void Fill(uint8_t* p, size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(rng());
}

// Writes `blocks` blocks of `block` bytes, reads them back into another buffer, compares.
void RoundTrip(IoBackend* backend, const std::string& path, size_t block, int blocks) {
  const int fd = OpenDirect(path);
  ASSERT_GE(fd, 0) << path;
  Aligned src(block * blocks), dst(block * blocks);
  Fill(src.p, src.n, 7);
  std::memset(dst.p, 0, dst.n);
  ASSERT_TRUE(backend->RegisterFiles(std::span<const int>(&fd, 1)).ok());
  iovec iov[2] = {{src.p, src.n}, {dst.p, dst.n}};
  ASSERT_TRUE(backend->RegisterBuffers(iov).ok());
  IoQueue q(backend, {path});
  for (int i = 0; i < blocks; ++i) q.Start(IoOp::kWrite, 0, uint64_t(i) * block, src.p + i * block, block, 0, i);
  ASSERT_TRUE(RunTransfers(q, blocks).ok());
  q.Start(IoOp::kFsync, 0, 0, nullptr, 0, -1, 99);
  ASSERT_TRUE(RunTransfers(q, 1).ok());
  for (int i = 0; i < blocks; ++i) q.Start(IoOp::kRead, 0, uint64_t(i) * block, dst.p + i * block, block, 1, i);
  Status st = RunTransfers(q, blocks);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(std::memcmp(src.p, dst.p, src.n), 0);
  ::close(fd);
}

TEST(Io, UringRoundTripDirect) {
  TempDir dir;
  auto b = MakeUringBackend(8);
  if (!b.ok() && b.status().code() == StatusCode::kUnavailable) GTEST_SKIP() << b.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE((*b)->name().find("io_uring"), std::string::npos);
  // More blocks than ring entries: IoQueue holds the rest until slots free up.
  RoundTrip(b->get(), dir.path() + "/f", 12288, 21);
}

TEST(Io, PosixRoundTrip) {
  TempDir dir;
  auto b = MakePosixBackend(4);
  ASSERT_TRUE(b.ok());
  RoundTrip(b->get(), dir.path() + "/f", 4096, 9);
}

// Retries of -EAGAIN and completion of short transfers move exactly the same bytes.
TEST(Io, ShortTransfersAndEagainAreCompleted) {
  TempDir dir;
  FaultCounters counters;
  FaultRules rules;
  rules.short_every_write = 2;
  rules.short_every_read = 3;
  rules.eagain_on_write = 1;
  rules.eagain_repeat = 3;
  auto fb = Faulty(rules, &counters)(8);
  ASSERT_TRUE(fb.ok());
  RoundTrip(fb->get(), dir.path() + "/f", 3 * 4096 + 8192, 7);
  EXPECT_GT(counters.shortened, 3u);
  EXPECT_EQ(counters.injected, 3u);
}

struct OneFile {
  TempDir dir;
  std::string path = dir.path() + "/data.bin";
  int fd = OpenDirect(path);
  Aligned buf{1 << 16};
  ~OneFile() { ::close(fd); }
};

Status OneTransfer(IoBackend* b, OneFile& f, IoOp op, uint64_t off, size_t len) {
  EXPECT_TRUE(b->RegisterFiles(std::span<const int>(&f.fd, 1)).ok());
  IoQueue q(b, {f.path});
  q.Start(op, 0, off, f.buf.p, len, -1, 1);
  return RunTransfers(q, 1);
}

TEST(Io, ErrorNamesFileOffsetAndErrno) {
  OneFile f;
  FaultCounters c;
  FaultRules rules;
  rules.error_on_write = 1;
  auto fb = Faulty(rules, &c)(4);
  ASSERT_TRUE(fb.ok());
  Status st = OneTransfer(fb->get(), f, IoOp::kWrite, 8192, 4096);
  ASSERT_EQ(st.code(), StatusCode::kIOError);
  EXPECT_NE(st.message().find(f.path), std::string::npos) << st;
  EXPECT_NE(st.message().find("offset 8192"), std::string::npos) << st;
  EXPECT_NE(st.message().find(strerror(EIO)), std::string::npos) << st;
}

TEST(Io, FullDiskSaysSo) {
  OneFile f;
  FaultCounters c;
  FaultRules rules;
  rules.error_on_write = 1;
  rules.write_errno = ENOSPC;
  auto fb = Faulty(rules, &c)(4);
  ASSERT_TRUE(fb.ok());
  Status st = OneTransfer(fb->get(), f, IoOp::kWrite, 0, 4096);
  ASSERT_EQ(st.code(), StatusCode::kIOError);
  EXPECT_NE(st.message().find("disk is full"), std::string::npos) << st;
}

TEST(Io, EagainForeverFailsInsteadOfSpinning) {
  OneFile f;
  FaultCounters c;
  FaultRules rules;
  rules.eagain_on_write = 1;
  rules.eagain_repeat = 1000000;
  auto fb = Faulty(rules, &c)(4);
  ASSERT_TRUE(fb.ok());
  Status st = OneTransfer(fb->get(), f, IoOp::kWrite, 0, 4096);
  ASSERT_EQ(st.code(), StatusCode::kIOError);
  EXPECT_NE(st.message().find("no progress"), std::string::npos) << st;
}

TEST(Io, ReadPastEndIsTruncation) {
  OneFile f;
  ASSERT_EQ(::ftruncate(f.fd, 8192), 0);
  auto b = MakeDefaultBackend(4);
  ASSERT_TRUE(b.ok());
  Status st = OneTransfer(b->get(), f, IoOp::kRead, 4096, 8192);
  ASSERT_EQ(st.code(), StatusCode::kCorruption) << st;
  EXPECT_NE(st.message().find("truncated"), std::string::npos) << st;
  EXPECT_NE(st.message().find(f.path), std::string::npos) << st;
}

TEST(Io, UringUsesRegisteredFilesAndBuffers) {
  auto b = MakeUringBackend(4);
  if (!b.ok() && b.status().code() == StatusCode::kUnavailable) GTEST_SKIP() << b.status();
  OneFile f;
  ASSERT_TRUE((*b)->RegisterFiles(std::span<const int>(&f.fd, 1)).ok());
  iovec iov{f.buf.p, f.buf.n};
  ASSERT_TRUE((*b)->RegisterBuffers(std::span<const iovec>(&iov, 1)).ok());
  // Registering buffers needs RLIMIT_MEMLOCK room (root has it); without it plain buffers work.
  EXPECT_EQ((*b)->name(), geteuid() == 0 ? "io_uring (fixed files, fixed buffers)"
                                          : (*b)->name());
  EXPECT_NE((*b)->name().find("fixed files"), std::string::npos);
}

}  // namespace
}  // namespace strata::offload
