#include "runtime/file_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "runtime/le.h"
#include "tests/offload/temp_dir.h"

namespace strata {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(Le, IntegersAreLittleEndianAtAnyAlignment) {
  uint8_t b[11] = {};
  PutU16(b + 1, 0x0201);
  EXPECT_EQ(b[1], 0x01);
  EXPECT_EQ(b[2], 0x02);
  EXPECT_EQ(GetU16(b + 1), 0x0201);
  PutU32(b + 1, 0x04030201u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(b[1 + i], i + 1);
  EXPECT_EQ(GetU32(b + 1), 0x04030201u);
  PutU64(b + 3, 0x0807060504030201ull);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(b[3 + i], i + 1);
  EXPECT_EQ(GetU64(b + 3), 0x0807060504030201ull);
  PutU64(b, UINT64_MAX);
  EXPECT_EQ(GetU64(b), UINT64_MAX);
}

TEST(Le, FloatsRoundTripBitForBit) {
  uint8_t b[8];
  for (double v : {0.9, -0.0, 1e-300, std::numeric_limits<double>::infinity()}) {
    PutF64(b, v);
    EXPECT_EQ(std::bit_cast<uint64_t>(GetF64(b)), std::bit_cast<uint64_t>(v));
  }
  PutF32(b, 1.0f);
  EXPECT_EQ(GetU32(b), 0x3F800000u);
  EXPECT_EQ(GetF32(b), 1.0f);
  PutF64(b, std::nan(""));
  EXPECT_TRUE(std::isnan(GetF64(b)));
}

TEST(FileUtil, WriteFileAtomicCreatesAndReplaces) {
  TempDir dir;
  const std::string path = dir / "a.txt";
  ASSERT_TRUE(WriteFileAtomic(path, "first version\n").ok());
  EXPECT_EQ(Slurp(path), "first version\n");
  ASSERT_TRUE(WriteFileAtomic(path, "second", /*sync=*/false).ok());
  EXPECT_EQ(Slurp(path), "second");
  ASSERT_TRUE(WriteFileAtomic(path, "").ok());
  EXPECT_EQ(Slurp(path), "");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(FileUtil, WriteFileAtomicIntoAMissingFolderNamesTheFile) {
  TempDir dir;
  const std::string path = dir / "no/such/folder/a.txt";
  const Status st = WriteFileAtomic(path, "x");
  ASSERT_TRUE(st.IsIOError()) << st;
  EXPECT_NE(st.message().find(path + ".tmp"), std::string::npos) << st;
  EXPECT_NE(st.message().find("No such file or directory"), std::string::npos) << st;
}

TEST(FileUtil, FailedRenameRemovesTheTmpFileAndKeepsTheOldFile) {
  TempDir dir;
  const std::string path = dir / "target";
  std::filesystem::create_directories(path + "/inside");  // a non-empty folder: rename over it fails
  const Status st = WriteFileAtomic(path, "x");
  ASSERT_TRUE(st.IsIOError()) << st;
  EXPECT_NE(st.message().find("rename to " + path), std::string::npos) << st;
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_TRUE(std::filesystem::is_directory(path + "/inside"));
}

TEST(FileUtil, FinishAtomicWriteWithAnErrorKeepsTheOldFile) {
  TempDir dir;
  const std::string path = dir / "f", tmp = dir / "f.part";
  ASSERT_TRUE(WriteFileAtomic(path, "old").ok());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(WriteAll(fd, "new", 3, tmp).ok());
  const Status st = FinishAtomicWrite(fd, tmp, path, Status::IOError("earlier failure"));
  EXPECT_EQ(st.message(), "earlier failure");
  EXPECT_FALSE(std::filesystem::exists(tmp));
  EXPECT_EQ(Slurp(path), "old");
}

TEST(FileUtil, PwriteAllWritesAtTheOffset) {
  TempDir dir;
  const std::string path = dir / "p";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(PwriteAll(fd, "tail", 4, 4, path).ok());
  ASSERT_TRUE(PwriteAll(fd, "head", 4, 0, path).ok());
  ::close(fd);
  EXPECT_EQ(Slurp(path), "headtail");
}

TEST(FileUtil, AFullDiskSaysSo) {
  const int fd = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
  if (fd < 0) GTEST_SKIP() << "no /dev/full here";
  const char buf[16] = {};
  const Status st = WriteAll(fd, buf, sizeof buf, "/dev/full");
  const Status pt = PwriteAll(fd, buf, sizeof buf, 7, "/dev/full");
  ::close(fd);
  ASSERT_TRUE(st.IsIOError()) << st;
  EXPECT_NE(st.message().find("/dev/full: write: "), std::string::npos) << st;
  EXPECT_NE(st.message().find("the disk is full"), std::string::npos) << st;
  ASSERT_TRUE(pt.IsIOError()) << pt;
  EXPECT_NE(pt.message().find("write at offset 7"), std::string::npos) << pt;
}

TEST(FileUtil, FsyncDirAndParentDir) {
  TempDir dir;
  EXPECT_TRUE(FsyncDir(dir.path()).ok());
  const Status st = FsyncDir(dir / "missing");
  ASSERT_TRUE(st.IsIOError()) << st;
  EXPECT_NE(st.message().find(dir / "missing"), std::string::npos) << st;
  EXPECT_EQ(ParentDir("a.txt"), ".");
  EXPECT_EQ(ParentDir("d/a.txt"), "d");
  EXPECT_EQ(ParentDir("/x/y/a.txt"), "/x/y");
}

}  // namespace
}  // namespace strata
