// What the fuzz targets share: a check that traps with its condition printed, a scratch folder for
// the parsers whose API takes a path, file helpers, a split at a separator, and (built with
// -DSTRATA_FUZZ_STANDALONE) a main() that runs every file named on the command line through the
// target once, so the seed corpus replays without libFuzzer. Include it once per target.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

// A broken contract is a crash libFuzzer saves: print what failed, then trap.
#define STRATA_FUZZ_CHECK(cond)                                                                  \
  do {                                                                                           \
    if (!(cond)) {                                                                               \
      std::fprintf(stderr, "%s:%d: fuzz contract broken: %s\n", __FILE__, __LINE__, #cond);      \
      __builtin_trap();                                                                          \
    }                                                                                            \
  } while (0)

namespace strata::fuzz {

// Set by a target when the parser accepted its input (and the round trip held). The standalone
// replay requires it for every seed whose file name starts with "ok-", so a seed that stops being
// accepted (a stricter parser, a stale generator) fails the corpus test instead of passing quietly.
inline bool accepted = false;
inline void Accept() { accepted = true; }

// This process's scratch folder, created on first use and removed at exit: under /dev/shm when it
// exists (tmpfs, so the fsyncs of the atomic writers cost nothing), else $TMPDIR or /tmp.
inline const std::string& ScratchDir() {
  struct Dir {
    std::string path;
    Dir() {
      std::error_code ec;
      std::string base = std::filesystem::is_directory("/dev/shm", ec) ? "/dev/shm" : "";
      if (base.empty()) base = std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp";
      std::string tmpl = base + "/strata-fuzz-XXXXXX";
      STRATA_FUZZ_CHECK(::mkdtemp(tmpl.data()) != nullptr);
      path = tmpl;
    }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const Dir dir;
  return dir.path;
}

inline void WriteBytes(const std::string& path, std::span<const uint8_t> bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  STRATA_FUZZ_CHECK(fd >= 0);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    STRATA_FUZZ_CHECK(w > 0);
    done += static_cast<size_t>(w);
  }
  STRATA_FUZZ_CHECK(::close(fd) == 0);
}
inline void WriteBytes(const std::string& path, std::string_view bytes) {
  WriteBytes(path, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

inline std::vector<uint8_t> ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  STRATA_FUZZ_CHECK(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The input cut at the first `sep`: (before, after). Without `sep`, (all of it, nothing).
// memmem, so libFuzzer's comparison hooks learn the separator quickly.
inline std::pair<std::string_view, std::string_view> SplitAt(const uint8_t* data, size_t size, std::string_view sep) {
  const char* s = reinterpret_cast<const char*>(data);
  const void* at = size == 0 ? nullptr : ::memmem(s, size, sep.data(), sep.size());
  if (at == nullptr) return {std::string_view(s, size), std::string_view()};
  const size_t k = static_cast<size_t>(static_cast<const char*>(at) - s);
  return {std::string_view(s, k), std::string_view(s + k + sep.size(), size - k - sep.size())};
}

}  // namespace strata::fuzz

#ifdef STRATA_FUZZ_STANDALONE
int main(int argc, char** argv) {
  const std::string self = std::filesystem::path(argv[0]).filename().string();
  int n = 0;
  for (int i = 1; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "%s: cannot read %s\n", self.c_str(), argv[i]);
      return 1;
    }
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    strata::fuzz::accepted = false;
    LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
    ++n;
    if (std::filesystem::path(argv[i]).filename().string().starts_with("ok-") && !strata::fuzz::accepted) {
      std::fprintf(stderr, "%s: %s is a seed that must be accepted, and was refused\n", self.c_str(), argv[i]);
      return 1;
    }
  }
  std::printf("%s: %d inputs ran\n", self.c_str(), n);
  return n > 0 ? 0 : 1;  // an empty corpus is a mistake in the build, not a pass
}
#endif
