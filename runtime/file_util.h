// Small POSIX file helpers shared by every writer of an output file (traces, plots, checkpoints,
// token files, safetensors, the offload state's MANIFEST). Errors are IOError statuses that name
// the file and carry errno's text; a full disk also says "the disk is full".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/status.h"

namespace strata {

// errno's text for messages: strerror(e), and for ENOSPC "(the disk is full)" after it.
std::string ErrnoText(int e);

// The whole file into *out, to its end (also when it grew since it was opened). NotFound when it
// does not exist ("PATH: no such file or folder"); IOError naming the file, the step and errno
// otherwise, also for something that is not a regular file.
[[nodiscard]] Status ReadFile(const std::string& path, std::string* out);
[[nodiscard]] Status ReadFile(const std::string& path, std::vector<uint8_t>* out);

// write(2) until all n bytes are written: EINTR is retried, a short write goes on where it stopped,
// and a write that makes no progress is an error (EIO) rather than a spin. `what` names the file.
[[nodiscard]] Status WriteAll(int fd, const void* p, size_t n, const std::string& what);

// pwrite(2) of n bytes at offset off, with WriteAll's retries; errors also name the offset.
[[nodiscard]] Status PwriteAll(int fd, const void* p, size_t n, uint64_t off, const std::string& what);

// fsync of a directory, so that a rename (or create, or unlink) in it survives a crash.
[[nodiscard]] Status FsyncDir(const std::string& dir);

// The directory that holds path ("." for a bare file name), for FsyncDir after a rename.
std::string ParentDir(const std::string& path);

// The end of every atomic replace: takes fd (open on tmp, which sits in path's folder) and st (the
// status of writing it). When st is ok: fsyncs fd when sync, closes it, renames tmp over path and
// fsyncs the folder when sync. Else, or when any of that fails, fd is closed, tmp removed, an old
// file at path is untouched, and the first error is returned.
[[nodiscard]] Status FinishAtomicWrite(int fd, const std::string& tmp, const std::string& path, Status st,
                                       bool sync = true);

// Replaces path with bytes so that a reader (and, with sync, a crash) sees the old file or the new
// one, never a mix: writes path + ".tmp" in the same folder, fsyncs it when sync, renames it over
// path and then fsyncs the folder when sync. On failure the tmp file is removed and an old file at
// path is untouched.
[[nodiscard]] Status WriteFileAtomic(const std::string& path, std::string_view bytes, bool sync = true);

}  // namespace strata
