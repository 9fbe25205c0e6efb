#include "runtime/sysinfo.h"

#include <ctime>
#include <fstream>

namespace strata {

std::string CpuModelName() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos)
      return line.substr(line.find(':') + 2);
  return "unknown";
}

uint64_t MemInfoBytes(const char* key) {
  std::ifstream f("/proc/meminfo");
  std::string k, unit;
  uint64_t kb = 0;
  while (f >> k >> kb >> unit)
    if (k == key) return kb * 1024;
  return 0;
}

uint64_t PeakRssBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

std::string TodayUtc() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&t));
  return buf;
}

}  // namespace strata
