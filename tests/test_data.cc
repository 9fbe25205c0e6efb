#include "tests/test_data.h"

#include <bit>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace strata::testing {

std::string GoldenPath(const std::string& name) { return std::string(STRATA_TEST_DATA_DIR) + "/golden/" + name; }
std::string TestDataPath(const std::string& name) { return std::string(STRATA_TEST_DATA_DIR) + "/" + name; }
std::string SharedDataPath(const std::string& name) { return std::string(STRATA_SHARED_DATA_DIR) + "/" + name; }

bool FileExists(const std::string& path) { return std::ifstream(path).good(); }

float HexToFloat(const std::string& hex) {
  return std::bit_cast<float>(static_cast<uint32_t>(std::stoul(hex, nullptr, 16)));
}

std::vector<float> ReadBookFile(const std::string& path) {
  std::ifstream f(path);
  std::vector<float> out;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ss(line);
    int idx;
    std::string dec, hex;
    if (!(ss >> idx >> dec >> hex)) return {};
    if (idx != static_cast<int>(out.size())) return {};
    out.push_back(HexToFloat(hex));
  }
  return out;
}

std::vector<float> Stanza::Floats(const std::string& key) const {
  std::vector<float> out;
  for (const auto& w : rows.at(key)) out.push_back(HexToFloat(w));
  return out;
}

std::vector<int> Stanza::Ints(const std::string& key) const {
  std::vector<int> out;
  for (const auto& w : rows.at(key)) out.push_back(std::stoi(w));
  return out;
}

std::vector<Stanza> ReadStanzas(const std::string& path) {
  std::ifstream f(path);
  std::vector<Stanza> out;
  std::string line;
  Stanza cur;
  bool in = false;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ss(line);
    std::string key;
    ss >> key;
    std::vector<std::string> words;
    for (std::string w; ss >> w;) words.push_back(w);
    if (key == "case") {
      cur = Stanza{};
      cur.header = words;
      in = true;
    } else if (key == "end") {
      if (in) out.push_back(cur);
      in = false;
    } else if (in) {
      cur.rows[key] = words;
    }
  }
  return out;
}

std::vector<float> Gaussian(size_t n, uint64_t seed, float scale) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> out(n);
  for (auto& x : out) x = d(rng);
  return out;
}

std::vector<float> HeavyTailed(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::student_t_distribution<float> d(2.0f);
  std::vector<float> out(n);
  for (auto& x : out) x = d(rng);
  return out;
}

}  // namespace strata::testing
