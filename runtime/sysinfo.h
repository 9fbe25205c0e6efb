// Facts about this machine and process that benchmarks and long runs report: the CPU's name,
// /proc/meminfo fields, the peak resident memory, today's date.
#pragma once

#include <cstdint>
#include <string>

namespace strata {

// "Intel(R) Xeon(R) Platinum 8488C" (the first "model name" of /proc/cpuinfo), or "unknown".
std::string CpuModelName();
// A /proc/meminfo field in bytes ("MemAvailable:", "MemTotal:"), or 0 when absent.
uint64_t MemInfoBytes(const char* key);
// The process's peak resident set (VmHWM), in bytes, or 0 when unknown.
uint64_t PeakRssBytes();
// Today's date in UTC, "2026-11-22".
std::string TodayUtc();

}  // namespace strata
