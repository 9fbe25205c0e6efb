// Helpers for tests that read committed golden files (tests/data/golden/) and the shared
// reference data (../shared/data/, absent from a user's clone: those tests skip, saying so).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace strata::testing {

std::string GoldenPath(const std::string& name);  // tests/data/golden/<name>
std::string TestDataPath(const std::string& name);  // tests/data/<name>
std::string SharedDataPath(const std::string& name);  // ../shared/data/<name>
bool FileExists(const std::string& path);

// A code book file: lines "index decimal hex" (comments with #). Empty on failure.
std::vector<float> ReadBookFile(const std::string& path);

// A stanza file: "case NAME fields...", then "key v v v" lines, then "end".
struct Stanza {
  std::vector<std::string> header;                        // the words after "case"
  std::map<std::string, std::vector<std::string>> rows;  // key -> words
  std::vector<float> Floats(const std::string& key) const;   // hex float32 bit patterns
  std::vector<int> Ints(const std::string& key) const;
  bool Has(const std::string& key) const { return rows.count(key) > 0; }
};
std::vector<Stanza> ReadStanzas(const std::string& path);

float HexToFloat(const std::string& hex);

// Deterministic test data.
std::vector<float> Gaussian(size_t n, uint64_t seed, float scale = 1.0f);
std::vector<float> HeavyTailed(size_t n, uint64_t seed);  // Student-t like, df ~ 2

}  // namespace strata::testing
