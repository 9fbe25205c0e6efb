// Child processes of the strata binary for the multi-process tests: start with a log file, wait
// with a deadline (then SIGKILL, so no test hangs), and kill whatever is left at the end.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace strata::testing_util {

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Child {
  pid_t pid = -1;
  std::string log;
  bool running() const { return pid > 0; }
};

// Starts STRATA_BINARY with args; stdout and stderr are appended to log.
inline Child SpawnStrata(const std::vector<std::string>& args, const std::string& log,
                         const std::string& cache_dir = "") {
  Child c;
  c.log = log;
  c.pid = ::fork();
  if (c.pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    if (!cache_dir.empty()) ::setenv("XDG_CACHE_HOME", cache_dir.c_str(), 1);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(STRATA_BINARY));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(STRATA_BINARY, argv.data());
    ::_exit(127);
  }
  return c;
}

// Waits up to `seconds`; returns the exit status, 128 + signal, or -1 after killing it on timeout.
inline int WaitFor(Child& c, double seconds) {
  if (c.pid <= 0) return -2;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  for (;;) {
    int st = 0;
    pid_t r = ::waitpid(c.pid, &st, WNOHANG);
    if (r == c.pid) {
      c.pid = -1;
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(c.pid, SIGKILL);
      ::waitpid(c.pid, &st, 0);
      c.pid = -1;
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

inline void Signal(Child& c, int sig) {
  if (c.pid > 0) ::kill(c.pid, sig);
}

// SIGKILL and reap.
inline int Kill(Child& c) {
  if (c.pid <= 0) return -2;
  ::kill(c.pid, SIGKILL);
  return WaitFor(c, 10);
}

}  // namespace strata::testing_util
