#include "runtime/file_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace strata {
namespace {

std::string ErrnoText(int e) {
  std::string s = std::strerror(e);
  if (e == ENOSPC) s += " (the disk is full)";
  return s;
}

// The loop behind WriteAll (at the file position) and PwriteAll (positional: at offset off).
Status WriteLoop(int fd, const uint8_t* p, size_t n, bool positional, uint64_t off, const std::string& what) {
  while (n > 0) {
    const ssize_t w = positional ? ::pwrite(fd, p, n, static_cast<off_t>(off)) : ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int e = w == 0 ? EIO : errno;  // no progress and no reason: do not spin
      const std::string at = positional ? ": write at offset " + std::to_string(off) + ": " : ": write: ";
      return Status::IOError(what + at + ErrnoText(e));
    }
    p += w;  // a short write: go on from where it stopped
    n -= static_cast<size_t>(w);
    off += static_cast<uint64_t>(w);
  }
  return Status::Ok();
}

}  // namespace

Status WriteAll(int fd, const void* p, size_t n, const std::string& what) {
  return WriteLoop(fd, static_cast<const uint8_t*>(p), n, false, 0, what);
}

Status PwriteAll(int fd, const void* p, size_t n, uint64_t off, const std::string& what) {
  return WriteLoop(fd, static_cast<const uint8_t*>(p), n, true, off, what);
}

Status FsyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::IOError(dir + ": open directory: " + ErrnoText(errno));
  const int r = ::fsync(fd);
  const int e = errno;
  ::close(fd);
  if (r != 0) return Status::IOError(dir + ": fsync directory: " + ErrnoText(e));
  return Status::Ok();
}

std::string ParentDir(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

Status FinishAtomicWrite(int fd, const std::string& tmp, const std::string& path, Status st, bool sync) {
  if (st.ok() && sync && ::fsync(fd) != 0) st = Status::IOError(tmp + ": fsync: " + ErrnoText(errno));
  if (::close(fd) != 0 && st.ok()) st = Status::IOError(tmp + ": close: " + ErrnoText(errno));
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0)
    st = Status::IOError(tmp + ": rename to " + path + ": " + ErrnoText(errno));
  if (!st.ok()) {
    ::unlink(tmp.c_str());  // an old file at path is untouched
    return st;
  }
  return sync ? FsyncDir(ParentDir(path)) : Status::Ok();
}

Status WriteFileAtomic(const std::string& path, std::string_view bytes, bool sync) {
  const std::string tmp = path + ".tmp";  // same folder, so the rename is atomic
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError(tmp + ": create: " + ErrnoText(errno));
  return FinishAtomicWrite(fd, tmp, path, WriteAll(fd, bytes.data(), bytes.size(), tmp), sync);
}

}  // namespace strata
