#include "runtime/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace strata {

std::string ErrnoText(int e) {
  std::string s = std::strerror(e);
  if (e == ENOSPC) s += " (the disk is full)";
  return s;
}

namespace {

template <class Bytes>
Status ReadFileInto(const std::string& path, Bytes* out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    if (e == ENOENT || e == ENOTDIR) return Status::NotFound(path + ": no such file or folder");
    return Status::IOError(path + ": open: " + ErrnoText(e));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::IOError(path + ": fstat: " + ErrnoText(errno));
  if (!S_ISREG(st.st_mode)) return Status::IOError(path + ": not a regular file");
  out->clear();
  out->resize(static_cast<size_t>(st.st_size) + 1);  // one byte more: the read that finds the end
  size_t got = 0;
  for (;;) {
    if (got == out->size()) out->resize(out->size() * 2);
    const ssize_t r = ::read(fd, reinterpret_cast<uint8_t*>(out->data()) + got, out->size() - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::IOError(path + ": read at offset " + std::to_string(got) + ": " + ErrnoText(errno));
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  out->resize(got);
  return Status::Ok();
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

Status ReadFile(const std::string& path, std::string* out) { return ReadFileInto(path, out); }
Status ReadFile(const std::string& path, std::vector<uint8_t>* out) { return ReadFileInto(path, out); }

}  // namespace strata
