// Safetensors (docs/formats/safetensors.md): exact half/bfloat16 conversions, a round trip of
// every dtype in awkward shapes, one named corruption case for every check the reader makes,
// truncation at every length and every flipped byte, the writer's refusals, and a file written
// by the Hugging Face `safetensors` package (tests/data/safetensors/python_fixture.safetensors,
// made by lab/peers/make_safetensors_fixture.py).
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <xxhash.h>

#include "model/checkpoint.h"
#include "model/config.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "tests/offload/temp_dir.h"

namespace strata::model {
namespace {

constexpr DType kAllDTypes[] = {
    DType::kF64,  DType::kF32,    DType::kF16,    DType::kBF16,   DType::kI64,        DType::kI32,        DType::kI16,
    DType::kI8,   DType::kU64,    DType::kU32,    DType::kU16,    DType::kU8,         DType::kBool,       DType::kF8E4M3,
    DType::kF8E5M2, DType::kF8E8M0, DType::kF8E4M3Fnuz, DType::kF8E5M2Fnuz, DType::kC64,
};

std::vector<uint8_t> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

void WriteFile(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

template <typename T>
std::span<const uint8_t> AsBytes(const std::vector<T>& v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(T)};
}

// A file by hand: the 8-byte length of `header` (or `length` when given), `header`, `data`.
std::vector<uint8_t> Raw(const std::string& header, const std::vector<uint8_t>& data = {},
                         uint64_t length = UINT64_MAX) {
  const uint64_t n = length == UINT64_MAX ? header.size() : length;
  std::vector<uint8_t> b(8);
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(n >> (8 * i));
  b.insert(b.end(), header.begin(), header.end());
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

Result<SafetensorsFile> Parse(std::vector<uint8_t> b) { return SafetensorsFile::FromBytes(std::move(b), "mem.st"); }

// The bytes must be refused as Corruption with a message naming the file and containing `want`.
void ExpectCorrupt(std::vector<uint8_t> b, const std::string& want) {
  auto f = Parse(std::move(b));
  ASSERT_FALSE(f.ok()) << "accepted; want an error containing: " << want;
  EXPECT_TRUE(f.status().IsCorruption()) << f.status();
  EXPECT_EQ(f.status().message().rfind("mem.st: ", 0), 0u) << f.status();
  EXPECT_NE(f.status().message().find(want), std::string::npos) << f.status() << "\n  want: " << want;
}

std::string Entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  const std::string& offsets) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
}

// ---- conversions -------------------------------------------------------------------------------

// The oracle: the value a half encodes, from its definition, in double (exact for every half).
double HalfValue(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
  const double mag = exp == 0 ? std::ldexp(mant, -24) : std::ldexp(1024 + mant, exp - 25);
  return sign ? -mag : mag;
}
double BF16Value(uint16_t b) {
  const int sign = b >> 15, exp = (b >> 7) & 0xFF, mant = b & 0x7F;
  const double mag = exp == 0 ? std::ldexp(mant, -133) : std::ldexp(128 + mant, exp - 134);
  return sign ? -mag : mag;
}

TEST(SafetensorsConvert, HalfToFloatIsExactForEveryValue) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = HalfToFloat(static_cast<uint16_t>(h));
    const uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
    const uint32_t fbits = std::bit_cast<uint32_t>(f);
    ASSERT_EQ(fbits >> 31, h >> 15) << std::hex << h;  // the sign, also of zeros and NaNs
    if (exp == 0x1F && mant == 0) {
      ASSERT_TRUE(std::isinf(f)) << std::hex << h;
    } else if (exp == 0x1F) {
      // NaN: the payload moves up 13 bits, unchanged (a signaling NaN stays signaling).
      ASSERT_TRUE(std::isnan(f)) << std::hex << h;
      ASSERT_EQ(fbits & 0x7FFFFF, mant << 13) << std::hex << h;
    } else {
      ASSERT_EQ(static_cast<double>(f), HalfValue(static_cast<uint16_t>(h))) << std::hex << h;
    }
  }
}

TEST(SafetensorsConvert, HalfSpecialValues) {
  EXPECT_EQ(std::bit_cast<uint32_t>(HalfToFloat(0x0000)), 0x00000000u);
  EXPECT_EQ(std::bit_cast<uint32_t>(HalfToFloat(0x8000)), 0x80000000u);  // -0
  EXPECT_EQ(HalfToFloat(0x3C00), 1.0f);
  EXPECT_EQ(HalfToFloat(0xC000), -2.0f);
  EXPECT_EQ(HalfToFloat(0x7BFF), 65504.0f);                         // largest finite
  EXPECT_EQ(HalfToFloat(0x0400), std::ldexp(1.0f, -14));            // smallest normal
  EXPECT_EQ(HalfToFloat(0x0001), std::ldexp(1.0f, -24));            // smallest subnormal
  EXPECT_EQ(HalfToFloat(0x03FF), std::ldexp(1023.0f, -24));         // largest subnormal
  EXPECT_EQ(HalfToFloat(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(HalfToFloat(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(HalfToFloat(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_EQ(std::bit_cast<uint32_t>(HalfToFloat(0x7E00)), 0x7FC00000u);  // the quiet NaN
  EXPECT_EQ(std::bit_cast<uint32_t>(HalfToFloat(0x7C01)), 0x7F802000u);  // signaling, payload 1
  EXPECT_EQ(std::bit_cast<uint32_t>(HalfToFloat(0xFE01)), 0xFFC02000u);
}

TEST(SafetensorsConvert, BF16ToFloatIsExactForEveryValue) {
  for (uint32_t b = 0; b < 65536; ++b) {
    const float f = BF16ToFloat(static_cast<uint16_t>(b));
    ASSERT_EQ(std::bit_cast<uint32_t>(f), b << 16) << std::hex << b;
    if (((b >> 7) & 0xFF) != 0xFF) {
      ASSERT_EQ(static_cast<double>(f), BF16Value(static_cast<uint16_t>(b))) << b;
    }
  }
  EXPECT_EQ(BF16ToFloat(0x3F80), 1.0f);
  EXPECT_EQ(BF16ToFloat(0x0001), std::ldexp(1.0f, -133));  // smallest subnormal
  EXPECT_EQ(BF16ToFloat(0x0080), std::ldexp(1.0f, -126));  // smallest normal
  EXPECT_EQ(BF16ToFloat(0x7F80), std::numeric_limits<float>::infinity());
  EXPECT_EQ(BF16ToFloat(0xFF80), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(BF16ToFloat(0x7FC0)));
  EXPECT_EQ(std::bit_cast<uint32_t>(BF16ToFloat(0x7F81)), 0x7F810000u);  // signaling NaN kept
  EXPECT_EQ(std::bit_cast<uint32_t>(BF16ToFloat(0x8000)), 0x80000000u);
}

TEST(SafetensorsDType, NamesSizesAndParsing) {
  for (DType d : kAllDTypes) {
    auto p = ParseDType(DTypeName(d));
    ASSERT_TRUE(p.ok()) << DTypeName(d);
    EXPECT_EQ(*p, d);
  }
  EXPECT_EQ(DTypeName(DType::kBF16), "BF16");
  EXPECT_EQ(DTypeName(DType::kBool), "BOOL");
  EXPECT_EQ(DTypeName(DType::kF8E4M3), "F8_E4M3");
  EXPECT_EQ(DTypeSize(DType::kF64), 8u);
  EXPECT_EQ(DTypeSize(DType::kC64), 8u);
  EXPECT_EQ(DTypeSize(DType::kBF16), 2u);
  EXPECT_EQ(DTypeSize(DType::kBool), 1u);
  auto unknown = ParseDType("F17");
  EXPECT_TRUE(unknown.status().IsInvalidArgument());
  EXPECT_NE(unknown.status().message().find("unknown dtype 'F17'"), std::string::npos) << unknown.status();
  EXPECT_NE(ParseDType("F4").status().message().find("sub-byte"), std::string::npos);
  EXPECT_FALSE(ParseDType("f32").ok());  // names are case-sensitive, as in the reference
}

// ---- round trip --------------------------------------------------------------------------------

TEST(SafetensorsRoundTrip, EveryDTypeInAwkwardShapes) {
  TempDir dir;
  const std::vector<std::vector<int64_t>> shapes = {{}, {0}, {3, 0, 5}, {1}, {7}, {2, 3, 5}, {13, 1, 11}, {1, 1, 1, 1}};
  std::mt19937_64 rng(7);
  std::vector<std::vector<uint8_t>> storage;
  std::vector<TensorOut> out;
  for (DType d : kAllDTypes) {
    for (size_t s = 0; s < shapes.size(); ++s) {
      int64_t n = 1;
      for (int64_t x : shapes[s]) n *= x;
      std::vector<uint8_t> b(static_cast<size_t>(n) * DTypeSize(d));
      for (auto& x : b) x = static_cast<uint8_t>(rng());
      storage.push_back(std::move(b));
      out.push_back({std::string(DTypeName(d)) + "." + std::to_string(s), d, shapes[s], {}});
    }
  }
  for (size_t i = 0; i < out.size(); ++i) out[i].bytes = storage[i];
  std::swap(out[3], out[40]);  // not grouped by dtype: the given order is kept all the same
  std::swap(storage[3], storage[40]);
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"step", "1200"}, {"", "empty key"}};
  const std::string path = dir / "all.safetensors";
  ASSERT_TRUE(WriteSafetensors(path, out, meta).ok());

  auto f = SafetensorsFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->path(), path);
  ASSERT_EQ(f->tensors().size(), out.size());
  uint64_t offset = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    const TensorInfo& t = f->tensors()[i];
    EXPECT_EQ(t.name, out[i].name);
    EXPECT_EQ(t.dtype, out[i].dtype);
    EXPECT_EQ(t.shape, out[i].shape);
    EXPECT_EQ(t.begin, offset) << t.name;  // contiguous, in the given order
    offset = t.end;
    const auto got = f->Bytes(t);
    ASSERT_EQ(got.size(), storage[i].size());
    EXPECT_TRUE(std::equal(got.begin(), got.end(), storage[i].begin())) << t.name;
    EXPECT_EQ(f->Find(t.name), &t);
  }
  EXPECT_EQ(f->Find("nope"), nullptr);
  for (const auto& [k, v] : meta) EXPECT_EQ(f->metadata().at(k), v);
  EXPECT_EQ(f->metadata().size(), meta.size() + 1);
  EXPECT_EQ(f->metadata().count(kSafetensorsChecksumKey), 1u);
  // The header is padded to a multiple of 8, so the data buffer starts 8-aligned.
  const auto bytes = ReadFile(path);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t{bytes[i]} << (8 * i);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + offset);
  EXPECT_EQ(f->data().size(), offset);
}

TEST(SafetensorsRoundTrip, HeaderTextIsExactlyTheReferenceLayout) {
  TempDir dir;
  const std::vector<float> a = {1.0f, 2.0f};
  const std::vector<uint16_t> b = {0x3C00};
  const std::vector<TensorOut> out = {{"a", DType::kF32, {2}, AsBytes(a)}, {"b.c", DType::kF16, {1, 1}, AsBytes(b)}};
  ASSERT_TRUE(WriteSafetensors(dir / "x.safetensors", out, {{"format", "pt"}}).ok());
  const auto bytes = ReadFile(dir / "x.safetensors");
  std::vector<uint8_t> data(AsBytes(a).begin(), AsBytes(a).end());
  data.insert(data.end(), AsBytes(b).begin(), AsBytes(b).end());
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(XXH3_64bits(data.data(), data.size())));
  std::string want = std::string("{\"__metadata__\":{\"format\":\"pt\",\"strata.xxh3\":\"") + hex + "\"}," +
                     Entry("a", "F32", "[2]", "[0,8]") + "," + Entry("b.c", "F16", "[1,1]", "[8,10]") + "}";
  while (want.size() % 8) want += ' ';
  EXPECT_EQ(bytes, Raw(want, data));
}

TEST(SafetensorsRoundTrip, NoTensorsAndEscapedStrings) {
  TempDir dir;
  const std::map<std::string, std::string> meta = {
      {"quote\"back\\slash", "new\nline\ttab \x01\x1f \xc3\xa9 \xf0\x9f\x99\x82"}, {"k", ""}};
  ASSERT_TRUE(WriteSafetensors(dir / "e.safetensors", {}, meta).ok());
  auto f = SafetensorsFile::Open(dir / "e.safetensors");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(f->tensors().empty());
  EXPECT_TRUE(f->data().empty());
  for (const auto& [k, v] : meta) EXPECT_EQ(f->metadata().at(k), v);

  const std::vector<float> x = {3.0f};
  const std::vector<TensorOut> one = {{"we\"ird\\name\n\xc3\xa9", DType::kF32, {}, AsBytes(x)}};
  ASSERT_TRUE(WriteSafetensors(dir / "n.safetensors", one, {}).ok());
  auto g = SafetensorsFile::Open(dir / "n.safetensors");
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_NE(g->Find(one[0].name), nullptr);
  EXPECT_EQ(g->Find(one[0].name)->numel(), 1);
}

TEST(SafetensorsRoundTrip, OverwriteIsAtomicAndLeavesNoTemporaryFiles) {
  TempDir dir;
  const std::string path = dir / "w.safetensors";
  const std::vector<float> a = {1, 2, 3}, b = {4, 5};
  ASSERT_TRUE(WriteSafetensors(path, std::vector<TensorOut>{{"a", DType::kF32, {3}, AsBytes(a)}}, {}).ok());
  ASSERT_TRUE(WriteSafetensors(path, std::vector<TensorOut>{{"b", DType::kF32, {2}, AsBytes(b)}}, {}).ok());
  auto f = SafetensorsFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->Find("a"), nullptr);
  auto v = f->ReadF32("b");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, b);
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    ++entries;
    EXPECT_EQ(e.path().filename(), "w.safetensors");
  }
  EXPECT_EQ(entries, 1);
}

TEST(SafetensorsRoundTrip, WriterReplacesAChecksumPassedIn) {
  TempDir dir;
  const std::vector<float> a = {1, 2};
  const std::vector<TensorOut> out = {{"a", DType::kF32, {2}, AsBytes(a)}};
  ASSERT_TRUE(WriteSafetensors(dir / "a", out, {{kSafetensorsChecksumKey, "0123456789abcdef"}}).ok());
  auto f = SafetensorsFile::Open(dir / "a");
  ASSERT_TRUE(f.ok()) << f.status();  // the stale value was replaced, so the check passes
  EXPECT_NE(f->metadata().at(kSafetensorsChecksumKey), "0123456789abcdef");
}

// ---- reading values ----------------------------------------------------------------------------

class SafetensorsRead : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::vector<TensorOut> out = {
        {"f32", DType::kF32, {2, 2}, AsBytes(f32_)},   {"f64", DType::kF64, {3}, AsBytes(f64_)},
        {"f16", DType::kF16, {4}, AsBytes(f16_)},      {"bf16", DType::kBF16, {3}, AsBytes(bf16_)},
        {"i64", DType::kI64, {3}, AsBytes(i64_)},      {"i64big", DType::kI64, {2}, AsBytes(i64big_)},
        {"u32", DType::kU32, {2}, AsBytes(u32_)},      {"i8", DType::kI8, {3}, AsBytes(i8_)},
        {"u8", DType::kU8, {2}, AsBytes(u8_)},         {"i32", DType::kI32, {2, 1}, AsBytes(i32_)},
        {"empty", DType::kF32, {0, 4}, {}},
    };
    path_ = dir_ / "r.safetensors";
    ASSERT_TRUE(WriteSafetensors(path_, out, {}).ok());
    auto f = SafetensorsFile::Open(path_);
    ASSERT_TRUE(f.ok()) << f.status();
    file_ = std::make_unique<SafetensorsFile>(std::move(f).value());
  }
  TempDir dir_;
  std::string path_;
  std::unique_ptr<SafetensorsFile> file_;
  std::vector<float> f32_ = {1.5f, -0.0f, 3e38f, 1e-45f};
  std::vector<double> f64_ = {1.0 / 3.0, -1e300, 5e-324};
  std::vector<uint16_t> f16_ = {0x3C00, 0x0001, 0xFC00, 0x7BFF};
  std::vector<uint16_t> bf16_ = {0x3F80, 0xC060, 0x0001};
  std::vector<int64_t> i64_ = {-2147483648LL, 0, 2147483647LL};
  std::vector<int64_t> i64big_ = {1, 3000000000LL};
  std::vector<uint32_t> u32_ = {7, 2147483648u};
  std::vector<int8_t> i8_ = {-128, 0, 127};
  std::vector<uint8_t> u8_ = {0, 255};
  std::vector<int32_t> i32_ = {-5, 5};
};

TEST_F(SafetensorsRead, F32FromEveryFloatDType) {
  auto f32 = file_->ReadF32("f32");
  ASSERT_TRUE(f32.ok()) << f32.status();
  for (size_t i = 0; i < f32_.size(); ++i) EXPECT_EQ(std::bit_cast<uint32_t>((*f32)[i]), std::bit_cast<uint32_t>(f32_[i]));
  auto f64 = file_->ReadF32("f64");
  ASSERT_TRUE(f64.ok()) << f64.status();
  EXPECT_EQ((*f64)[0], static_cast<float>(1.0 / 3.0));  // rounded to nearest
  EXPECT_EQ((*f64)[1], -std::numeric_limits<float>::infinity());
  EXPECT_EQ(std::bit_cast<uint32_t>((*f64)[2]), 0u);
  auto f16 = file_->ReadF32("f16");
  ASSERT_TRUE(f16.ok()) << f16.status();
  EXPECT_EQ(*f16, (std::vector<float>{1.0f, std::ldexp(1.0f, -24), -std::numeric_limits<float>::infinity(), 65504.0f}));
  std::vector<float> bf16(3);
  ASSERT_TRUE(file_->ReadF32("bf16", bf16).ok());
  EXPECT_EQ(bf16, (std::vector<float>{1.0f, -3.5f, std::ldexp(1.0f, -133)}));
  auto empty = file_->ReadF32("empty");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->empty());
}

TEST_F(SafetensorsRead, F32ErrorsNameFileAndTensor) {
  std::vector<float> three(3);
  Status st = file_->ReadF32("f32", three);
  EXPECT_TRUE(st.IsInvalidArgument()) << st;
  EXPECT_NE(st.message().find(path_ + ": tensor 'f32' (F32 [2, 2]) has 4 elements"), std::string::npos) << st;
  std::vector<float> two(2);
  st = file_->ReadF32("i32", two);
  EXPECT_TRUE(st.IsInvalidArgument()) << st;
  EXPECT_NE(st.message().find("tensor 'i32' (I32 [2, 1])"), std::string::npos) << st;
  st = file_->ReadF32("missing", two);
  EXPECT_TRUE(st.IsNotFound()) << st;
  EXPECT_NE(st.message().find(path_ + ": no tensor 'missing'"), std::string::npos) << st;
}

TEST_F(SafetensorsRead, I32FromIntegerDTypesWithRangeChecks) {
  auto i64 = file_->ReadI32("i64");
  ASSERT_TRUE(i64.ok()) << i64.status();
  EXPECT_EQ(*i64, (std::vector<int32_t>{-2147483647 - 1, 0, 2147483647}));
  EXPECT_EQ(file_->ReadI32("i8").value(), (std::vector<int32_t>{-128, 0, 127}));
  EXPECT_EQ(file_->ReadI32("u8").value(), (std::vector<int32_t>{0, 255}));
  EXPECT_EQ(file_->ReadI32("i32").value(), (std::vector<int32_t>{-5, 5}));
  auto big = file_->ReadI32("i64big");
  EXPECT_TRUE(big.status().IsInvalidArgument());
  EXPECT_NE(big.status().message().find("tensor 'i64big' (I64 [2]): element 1 is 3000000000"), std::string::npos)
      << big.status();
  auto u32 = file_->ReadI32("u32");
  EXPECT_NE(u32.status().message().find("element 1 is 2147483648"), std::string::npos) << u32.status();
  EXPECT_TRUE(file_->ReadI32("f32").status().IsInvalidArgument());
  EXPECT_TRUE(file_->ReadI32("nope").status().IsNotFound());
}

// ---- the writer's refusals ---------------------------------------------------------------------

TEST(SafetensorsWrite, RefusesBadInputAndWritesNothing) {
  TempDir dir;
  const std::string path = dir / "bad.safetensors";
  const std::vector<float> four(4);
  const auto bytes = AsBytes(four);
  struct Case {
    const char* name;
    std::vector<TensorOut> tensors;
    std::map<std::string, std::string> meta;
    std::string want;
  };
  const std::vector<Case> cases = {
      {"DUPLICATE_NAME", {{"w", DType::kF32, {4}, bytes}, {"w", DType::kF32, {4}, bytes}}, {}, "tensor 'w' is given twice"},
      {"SIZE_MISMATCH", {{"w", DType::kF32, {5}, bytes}}, {}, "16 bytes given, but shape [5] of F32 needs 20"},
      {"SIZE_MISMATCH_DTYPE", {{"w", DType::kF64, {4}, bytes}}, {}, "needs 32"},
      {"NEGATIVE_DIM", {{"w", DType::kF32, {-1, -4}, bytes}}, {}, "negative dimension"},
      {"SHAPE_OVERFLOW", {{"w", DType::kF32, {int64_t{1} << 62, 4}, bytes}}, {}, "overflows 64 bits"},
      {"BYTES_OVERFLOW", {{"w", DType::kF64, {int64_t{1} << 62}, bytes}}, {}, "overflows 64 bits"},
      {"RESERVED_NAME", {{"__metadata__", DType::kF32, {4}, bytes}}, {}, "reserved"},
      {"NAME_NOT_UTF8", {{"w\xff", DType::kF32, {4}, bytes}}, {}, "not valid UTF-8"},
      {"METADATA_NOT_UTF8", {}, {{"k", "\xc3"}}, "not valid UTF-8"},
      {"BAD_DTYPE_VALUE", {{"w", static_cast<DType>(200), {4}, bytes}}, {}, "bad dtype"},
  };
  for (const Case& c : cases) {
    Status st = WriteSafetensors(path, c.tensors, c.meta);
    EXPECT_TRUE(st.IsInvalidArgument()) << c.name << ": " << st;
    EXPECT_NE(st.message().find(path), std::string::npos) << c.name << ": " << st;
    EXPECT_NE(st.message().find(c.want), std::string::npos) << c.name << ": " << st << "\n  want: " << c.want;
    EXPECT_TRUE(std::filesystem::is_empty(dir.path())) << c.name;
  }
  Status st = WriteSafetensors(dir / "no/such/dir/x.safetensors", {}, {});
  EXPECT_TRUE(st.IsIOError()) << st;
  EXPECT_NE(st.message().find("no/such/dir/x.safetensors"), std::string::npos) << st;
}

// ---- opening -----------------------------------------------------------------------------------

TEST(SafetensorsOpen, MissingFileIsNotFoundAndADirectoryIsAnIOError) {
  TempDir dir;
  auto missing = SafetensorsFile::Open(dir / "absent.safetensors");
  EXPECT_TRUE(missing.status().IsNotFound()) << missing.status();
  EXPECT_NE(missing.status().message().find(dir / "absent.safetensors"), std::string::npos);
  auto d = SafetensorsFile::Open(dir.path());
  EXPECT_TRUE(d.status().IsIOError()) << d.status();
}

TEST(SafetensorsOpen, AcceptsWhatTheFormatAllows) {
  const std::vector<uint8_t> data = {1, 2, 3, 4, 5, 6};
  // Header not padded, JSON whitespace, unknown entry keys, header order unlike data order, no
  // __metadata__ (so no checksum), zero-size tensors at boundaries, the same one twice at 0.
  const std::string header = "{ " + Entry("b", "U8", "[2]", "[4, 6]") + ",\n\t" + Entry("a", "I16", "[2]", "[0,4]") +
                             ", \"z1\":{\"data_offsets\":[0,0],\"shape\":[0],\"dtype\":\"F32\",\"extra\":{\"x\":[1]}}, " +
                             Entry("z2", "F64", "[3, 0]", "[6,6]") + "," + Entry("z3", "BOOL", "[0]", "[0,0]") + " }\r\n ";
  auto f = Parse(Raw(header, data));
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->tensors().size(), 5u);
  EXPECT_EQ(f->tensors()[2].name, "a");  // data-buffer order: z1, z3 (both [0,0)), a, b, z2
  EXPECT_EQ(f->tensors()[3].name, "b");
  EXPECT_EQ(f->tensors()[4].name, "z2");
  EXPECT_TRUE(f->metadata().empty());
  EXPECT_EQ(f->Bytes(*f->Find("b"))[1], 6);
  EXPECT_EQ(f->ReadI32("a").value(), (std::vector<int32_t>{0x0201, 0x0403}));
  EXPECT_TRUE(Parse(Raw("{}")).ok());  // no tensors at all
  EXPECT_TRUE(Parse(Raw("{\"__metadata__\":{}}")).ok());
  EXPECT_TRUE(Parse(Raw("{\"__metadata__\":null}")).ok());  // as the reference: no metadata
}

// One named case for every check the reader makes (the spec lists them in this order).
TEST(SafetensorsCorrupt, FileShorterThanTheLengthField) {
  for (size_t n = 0; n < 8; ++n) ExpectCorrupt(std::vector<uint8_t>(n, 0), "shorter than the 8-byte header length");
}
TEST(SafetensorsCorrupt, HeaderLengthZero) { ExpectCorrupt(Raw("", {}, 0), "header length (bytes 0..8) is 0"); }
TEST(SafetensorsCorrupt, HeaderLengthOverTheLimit) {
  ExpectCorrupt(Raw("{}", {}, kSafetensorsMaxHeaderBytes + 1), "header length 100000001 (bytes 0..8) is over the limit");
  ExpectCorrupt(Raw("{}", {}, UINT64_MAX - 1), "is over the limit");
}
TEST(SafetensorsCorrupt, HeaderLengthPastEndOfFile) {
  ExpectCorrupt(Raw("{}", {}, 3), "header length 3 (bytes 0..8) runs past the end of the file (10 bytes)");
}
TEST(SafetensorsCorrupt, HeaderNotUtf8) {
  ExpectCorrupt(Raw("{\"a\xff\":1}"), "not valid UTF-8 at file offset 11");
  ExpectCorrupt(Raw("{\"\xed\xa0\x80\":1}"), "not valid UTF-8");  // an encoded surrogate
  ExpectCorrupt(Raw("{\"\xc0\xaf\":1}"), "not valid UTF-8");      // overlong
}
TEST(SafetensorsCorrupt, HeaderNotAnObject) {
  ExpectCorrupt(Raw("[1, 2]  "), "does not start with '{'");
  ExpectCorrupt(Raw(" {}"), "does not start with '{'");
}
TEST(SafetensorsCorrupt, HeaderNotJson) {
  const std::pair<std::string, std::string> cases[] = {
      {"{\"a\":", "not valid JSON at file offset 13: expected a value, found end of header"},
      {"{\"a\":1,}", "expected a key string"},
      {"{} x", "unexpected 'x' after the top-level value"},
      {"{'a':1}", "expected a key string"},
      {"{\"a\" 1}", "expected ':'"},
      {"{\"a\":[1 2]}", "expected ']'"},
      {"{\"a\":tru}", "expected 'true'"},
      {"{\"a\":01}", "expected '}'"},
      {"{\"a\":-}", "expected a digit"},
      {"{\"a\":1.}", "expected a digit"},
      {"{\"a\":\"x\ny\"}", "control character"},
      {"{\"a\":\"\\q\"}", "bad escape"},
      {"{\"a\":\"\\u12\"}", "bad hex digit"},
      {"{\"a\":\"\\udc00\"}", "lone low surrogate"},
      {"{\"a\":\"\\ud800x\"}", "high surrogate not followed"},
      {"{\"a\":\"abc", "unterminated string"},
      {"{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}", "nested deeper than 64 levels"},
  };
  for (const auto& [header, want] : cases) {
    SCOPED_TRACE(header.substr(0, 40));
    ExpectCorrupt(Raw(header), want);
  }
  ExpectCorrupt(Raw(std::string("{}\0\0", 4)), "unexpected byte 0x00");
}
TEST(SafetensorsCorrupt, EntryNotAnObject) { ExpectCorrupt(Raw("{\"w\":[0,4]}"), "tensor 'w': entry is a list, not an object"); }
TEST(SafetensorsCorrupt, EntryMissingOrRepeatedField) {
  ExpectCorrupt(Raw("{\"w\":{\"shape\":[],\"data_offsets\":[0,0]}}"), "tensor 'w': no \"dtype\"");
  ExpectCorrupt(Raw("{\"w\":{\"dtype\":\"U8\",\"data_offsets\":[0,0]}}"), "tensor 'w': no \"shape\"");
  ExpectCorrupt(Raw("{\"w\":{\"dtype\":\"U8\",\"shape\":[0]}}"), "tensor 'w': no \"data_offsets\"");
  ExpectCorrupt(Raw("{\"w\":{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}"),
                "tensor 'w': key \"dtype\" appears twice");
}
TEST(SafetensorsCorrupt, DTypeUnknown) {
  ExpectCorrupt(Raw("{" + Entry("w", "F17", "[1]", "[0,4]") + "}", {0, 0, 0, 0}), "tensor 'w': unknown dtype 'F17'");
  ExpectCorrupt(Raw("{" + Entry("w", "F4", "[2]", "[0,1]") + "}", {0}), "tensor 'w': dtype 'F4' is a sub-byte");
  ExpectCorrupt(Raw("{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", {0, 0, 0, 0}),
                "tensor 'w': dtype is a number, not a string");
}
TEST(SafetensorsCorrupt, ShapeNotAListOfNonNegativeInts) {
  const std::pair<std::string, std::string> cases[] = {
      {"4", "shape is a number, not a list"},
      {"[-1]", "shape[0] is -1, not a non-negative integer"},
      {"[2, 2.0]", "shape[1] is 2.0, not"},
      {"[1e2]", "shape[0] is 1e2, not"},
      {"[\"4\"]", "shape[0] is \"4\", not"},
      {"[null]", "shape[0] is null, not"},
      {"[9223372036854775808]", "shape[0] is 9223372036854775808, not a non-negative integer below 2^63"},
      {"[99999999999999999999999]", "shape[0] is 99999999999999999999999"},
  };
  for (const auto& [shape, want] : cases) ExpectCorrupt(Raw("{" + Entry("w", "F32", shape, "[0,4]") + "}"), "tensor 'w': " + want);
}
TEST(SafetensorsCorrupt, SizeOverflow) {
  ExpectCorrupt(Raw("{" + Entry("w", "F32", "[4611686018427387904, 4]", "[0,0]") + "}"),
                "tensor 'w': shape [4611686018427387904, 4] of F32 overflows 64 bits");
  ExpectCorrupt(Raw("{" + Entry("w", "I8", "[4294967296, 4294967296]", "[0,0]") + "}"), "overflows 64 bits");
  // numel fits, numel * itemsize does not.
  ExpectCorrupt(Raw("{" + Entry("w", "F64", "[4611686018427387904]", "[0,0]") + "}"), "of F64 overflows 64 bits");
  // The product is checked as it is formed, left to right, as the reference does: a leading 0
  // makes a valid empty tensor, a trailing 0 comes too late.
  EXPECT_TRUE(Parse(Raw("{" + Entry("w", "F32", "[0, 4611686018427387904, 4611686018427387904]", "[0,0]") + "}")).ok());
  ExpectCorrupt(Raw("{" + Entry("w", "F32", "[4611686018427387904, 4611686018427387904, 0]", "[0,0]") + "}"),
                "overflows 64 bits");
}
TEST(SafetensorsCorrupt, DataOffsetsNotTwoInts) {
  for (const char* offs : {"[0]", "[0,4,8]", "[\"0\",4]", "[-1,3]", "[0,4.0]", "{}", "[0,18446744073709551616]"})
    ExpectCorrupt(Raw("{" + Entry("w", "F32", "[1]", offs) + "}", {0, 0, 0, 0}),
                  "tensor 'w': data_offsets is not a list of two non-negative 64-bit integers");
}
TEST(SafetensorsCorrupt, DataOffsetsEndBeforeBegin) {
  ExpectCorrupt(Raw("{" + Entry("w", "U8", "[0]", "[4,0]") + "}", {0, 0, 0, 0}),
                "tensor 'w': data_offsets [4, 0] ends before it begins");
}
TEST(SafetensorsCorrupt, DataOffsetsSizeMismatch) {
  ExpectCorrupt(Raw("{" + Entry("w", "F32", "[2, 3]", "[0,20]") + "}", std::vector<uint8_t>(20)),
                "tensor 'w': data_offsets [0, 20] hold 20 bytes, but shape [2, 3] of F32 needs 24");
}
TEST(SafetensorsCorrupt, DataOffsetsPastTheDataBuffer) {
  ExpectCorrupt(Raw("{" + Entry("w", "F32", "[2]", "[0,8]") + "}", std::vector<uint8_t>(4)),
                "tensor 'w': data_offsets [0, 8] run past the end of the data buffer (4 bytes, from file offset");
  ExpectCorrupt(Raw("{" + Entry("w", "U8", "[1]", "[18446744073709551614,18446744073709551615]") + "}", {0}),
                "run past the end of the data buffer");
}
TEST(SafetensorsCorrupt, TensorsOverlap) {
  ExpectCorrupt(Raw("{" + Entry("a", "U8", "[4]", "[0,4]") + "," + Entry("b", "U8", "[4]", "[2,6]") + "}",
                    std::vector<uint8_t>(6)),
                "tensors 'a' [0, 4) and 'b' [2, 6) overlap in the data buffer");
  ExpectCorrupt(Raw("{" + Entry("a", "U8", "[4]", "[0,4]") + "," + Entry("b", "U8", "[4]", "[0,4]") + "}",
                    std::vector<uint8_t>(4)),
                "overlap");  // the same bytes twice
  ExpectCorrupt(Raw("{" + Entry("a", "U8", "[4]", "[0,4]") + "," + Entry("z", "U8", "[0]", "[2,2]") + "}",
                    std::vector<uint8_t>(4)),
                "tensors 'a' [0, 4) and 'z' [2, 2) overlap");  // an empty tensor inside another
}
TEST(SafetensorsCorrupt, DataBufferGaps) {
  ExpectCorrupt(Raw("{" + Entry("a", "U8", "[2]", "[0,2]") + "," + Entry("b", "U8", "[2]", "[4,6]") + "}",
                    std::vector<uint8_t>(6)),
                "data buffer bytes [2, 4) (before tensor 'b') belong to no tensor");
  ExpectCorrupt(Raw("{" + Entry("a", "U8", "[2]", "[1,3]") + "}", std::vector<uint8_t>(3)),
                "data buffer bytes [0, 1) (before tensor 'a') belong to no tensor");
  ExpectCorrupt(Raw("{" + Entry("a", "U8", "[2]", "[0,2]") + "}", std::vector<uint8_t>(5)),
                "data buffer bytes [2, 5) (file offsets");
  ExpectCorrupt(Raw("{}", {0}), "data buffer bytes [0, 1)");
}
TEST(SafetensorsCorrupt, DuplicateTensorName) {
  ExpectCorrupt(Raw("{" + Entry("a", "U8", "[2]", "[0,2]") + "," + Entry("a", "U8", "[2]", "[2,4]") + "}",
                    std::vector<uint8_t>(4)),
                "tensor 'a' appears twice in the header");
}
TEST(SafetensorsCorrupt, MetadataNotAMapOfStrings) {
  ExpectCorrupt(Raw("{\"__metadata__\":[]}"), "\"__metadata__\" is a list, not an object of strings");
  ExpectCorrupt(Raw("{\"__metadata__\":\"x\"}"), "\"__metadata__\" is a string, not an object of strings");
  ExpectCorrupt(Raw("{\"__metadata__\":{\"epoch\":3}}"), "\"__metadata__\" key 'epoch' is a number, not a string");
  ExpectCorrupt(Raw("{\"__metadata__\":{\"a\":\"x\",\"a\":\"y\"}}"), "\"__metadata__\" has key 'a' twice");
  ExpectCorrupt(Raw("{\"__metadata__\":{},\"__metadata__\":{}}"), "header has \"__metadata__\" twice");
}
TEST(SafetensorsCorrupt, ChecksumMismatchOrMalformed) {
  TempDir dir;
  const std::vector<float> a = {1, 2, 3};
  ASSERT_TRUE(WriteSafetensors(dir / "c", std::vector<TensorOut>{{"a", DType::kF32, {3}, AsBytes(a)}}, {}).ok());
  auto good = ReadFile(dir / "c");
  auto bad = good;
  bad.back() ^= 0x01;
  ExpectCorrupt(bad, "checksum mismatch: metadata \"strata.xxh3\" is ");
  // Through Open too: the message starts with the path.
  WriteFile(dir / "c", bad);
  auto f = SafetensorsFile::Open(dir / "c");
  EXPECT_TRUE(f.status().IsCorruption());
  EXPECT_EQ(f.status().message().rfind(dir / "c" + ": checksum mismatch", 0), 0u) << f.status();

  ExpectCorrupt(Raw("{\"__metadata__\":{\"strata.xxh3\":\"xyz\"}}"), "\"strata.xxh3\" is \"xyz\", not 16 lowercase hex");
  ExpectCorrupt(Raw("{\"__metadata__\":{\"strata.xxh3\":\"0123456789ABCDEF\"}}"), "not 16 lowercase hex");
  // The checksum of an empty buffer is checked as well.
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(XXH3_64bits(nullptr, 0)));
  EXPECT_TRUE(Parse(Raw(std::string("{\"__metadata__\":{\"strata.xxh3\":\"") + hex + "\"}}")).ok());
  ExpectCorrupt(Raw("{\"__metadata__\":{\"strata.xxh3\":\"0000000000000000\"}}"), "checksum mismatch");
}

// A small valid file: every prefix is refused (never a crash), every flipped byte is either
// refused or yields a file that still passes every check; a flipped data byte is always refused.
std::vector<uint8_t> SmallFile(const TempDir& dir) {
  const std::vector<uint16_t> h = {0x3C00, 0x0001, 0x7E00};
  const std::vector<int64_t> i = {-1, 2};
  const std::vector<uint8_t> s = {1};
  const std::vector<TensorOut> out = {
      {"h", DType::kF16, {3}, AsBytes(h)}, {"i", DType::kI64, {2, 1}, AsBytes(i)}, {"s", DType::kBool, {}, AsBytes(s)}};
  EXPECT_TRUE(WriteSafetensors(dir / "small", out, {{"k", "v"}}).ok());
  return ReadFile(dir / "small");
}

TEST(SafetensorsCorrupt, TruncatedAtEveryLength) {
  TempDir dir;
  const auto good = SmallFile(dir);
  ASSERT_TRUE(Parse(good).ok());
  for (size_t n = 0; n < good.size(); ++n) {
    auto f = Parse(std::vector<uint8_t>(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n)));
    ASSERT_FALSE(f.ok()) << "a prefix of " << n << " of " << good.size() << " bytes was accepted";
    ASSERT_TRUE(f.status().IsCorruption()) << f.status();
  }
  // And through the file system, at a few lengths.
  for (size_t n : {size_t{0}, size_t{7}, size_t{8}, size_t{9}, good.size() / 2, good.size() - 1}) {
    WriteFile(dir / "t", std::vector<uint8_t>(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n)));
    EXPECT_TRUE(SafetensorsFile::Open(dir / "t").status().IsCorruption()) << n;
  }
}

TEST(SafetensorsCorrupt, EveryFlippedByte) {
  TempDir dir;
  const auto good = SmallFile(dir);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t{good[i]} << (8 * i);
  int refused = 0;
  for (size_t at = 0; at < good.size(); ++at) {
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xFF}}) {
      auto b = good;
      b[at] ^= mask;
      auto f = Parse(std::move(b));
      if (!f.ok()) {
        ++refused;
        ASSERT_TRUE(f.status().IsCorruption()) << f.status();
      } else {
        ASSERT_GE(at, 8u);
        ASSERT_LT(at, 8 + n) << "a flipped data byte at " << at << " was accepted";
        for (const auto& t : f->tensors()) ASSERT_LE(t.end, f->data().size());  // still consistent
      }
    }
  }
  EXPECT_GT(refused, static_cast<int>(good.size()));  // most flips break something
}

// ---- the Hugging Face safetensors package ------------------------------------------------------

std::string FixturePath() { return std::string(STRATA_TEST_DATA_DIR) + "/safetensors/python_fixture.safetensors"; }

// The same table as EXPECTED in lab/peers/make_safetensors_fixture.py.
struct Want {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint64_t> values;  // float bit patterns, integers (two's complement), raw bytes
};
std::vector<Want> FixtureTable() {
  std::vector<uint64_t> prime;
  for (int i = 0; i < 105; ++i) prime.push_back(std::bit_cast<uint32_t>(static_cast<float>(i * 0.5 - 20.0)));
  const auto u = [](int64_t v) { return static_cast<uint64_t>(v); };
  return {
      {"f32", DType::kF32, {2, 3}, {0x00000000, 0x3FC00000, 0xC0100000, 0x000116C2, 0x7F800000, 0x7FC00001}},
      {"f16", DType::kF16, {3, 3}, {0x0000, 0x8000, 0x3C00, 0x7BFF, 0x0400, 0x0001, 0x7C00, 0xFC00, 0x7E01}},
      {"bf16", DType::kBF16, {5}, {0x3F80, 0xC060, 0x0001, 0x7F80, 0x7F7F}},
      {"f64", DType::kF64, {3}, {std::bit_cast<uint64_t>(1.0 / 3.0), std::bit_cast<uint64_t>(-1e300), 1}},
      {"i64", DType::kI64, {2, 2}, {0, u(-1), u(int64_t{1} << 40), u(-(int64_t{1} << 31))}},
      {"i32", DType::kI32, {3}, {u(INT32_MIN), 0, u(INT32_MAX)}},
      {"i16", DType::kI16, {2}, {u(-32768), u(32767)}},
      {"i8", DType::kI8, {3}, {u(-128), 0, u(127)}},
      {"u64", DType::kU64, {1}, {UINT64_MAX}},
      {"u32", DType::kU32, {2}, {7, UINT32_MAX}},
      {"u16", DType::kU16, {2}, {0, 65535}},
      {"u8", DType::kU8, {4}, {0, 1, 128, 255}},
      {"bool", DType::kBool, {3}, {1, 0, 1}},
      {"f8", DType::kF8E4M3, {4}, {0x00, 0x38, 0x7E, 0xFF}},
      {"c64", DType::kC64, {2}, {std::bit_cast<uint32_t>(1.0f), std::bit_cast<uint32_t>(2.0f),
                                 std::bit_cast<uint32_t>(-0.5f), std::bit_cast<uint32_t>(0.0f)}},
      {"quote\"name", DType::kF32, {}, {0x42280000}},
      {"empty", DType::kF32, {0, 5}, {}},
      {"emb.wt\xc3\xa9", DType::kF32, {3, 5, 7}, prime},
  };
}

// The little-endian bytes of `values`, each `size` bytes wide (C64: 4-byte parts).
std::vector<uint8_t> Encode(const Want& w) {
  const size_t size = w.dtype == DType::kC64 ? 4 : DTypeSize(w.dtype);
  std::vector<uint8_t> b;
  for (uint64_t v : w.values)
    for (size_t i = 0; i < size; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
  return b;
}

TEST(SafetensorsPeer, ReadsTheFilePythonWroteExactly) {
  auto f = SafetensorsFile::Open(FixturePath());
  ASSERT_TRUE(f.ok()) << f.status();
  const auto table = FixtureTable();
  ASSERT_EQ(f->tensors().size(), table.size());
  for (const Want& w : table) {
    SCOPED_TRACE(w.name);
    const TensorInfo* t = f->Find(w.name);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->dtype, w.dtype);
    EXPECT_EQ(t->shape, w.shape);
    const auto got = f->Bytes(*t);
    const auto want = Encode(w);
    EXPECT_EQ(std::vector<uint8_t>(got.begin(), got.end()), want);
  }
  EXPECT_EQ(f->metadata(), (std::map<std::string, std::string>{
                               {"format", "pt"}, {"note", "quote\" newline\n tab\t \xc3\xa9 \xe2\x88\x91 \xf0\x9f\x99\x82 \x01"}}));
  // Conversions of the peer's values.
  auto f16 = f->ReadF32("f16");
  ASSERT_TRUE(f16.ok()) << f16.status();
  EXPECT_EQ((*f16)[3], 65504.0f);
  EXPECT_EQ((*f16)[5], std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::isnan((*f16)[8]));
  EXPECT_EQ((f->ReadF32("bf16").value())[1], -3.5f);
  EXPECT_EQ((f->ReadF32("quote\"name").value())[0], 42.0f);
  EXPECT_EQ((f->ReadF32("emb.wt\xc3\xa9").value())[104], 32.0f);
  EXPECT_EQ(f->ReadI32("i32").value(), (std::vector<int32_t>{INT32_MIN, 0, INT32_MAX}));
  EXPECT_TRUE(f->ReadI32("u64").status().IsInvalidArgument());
}

// strata writing the peer's tensors in the peer's order reproduces its data buffer byte for byte
// (lab/peers/make_safetensors_fixture.py --check confirms the package reads such a file).
TEST(SafetensorsPeer, RewritingTheFileKeepsItsDataBuffer) {
  auto f = SafetensorsFile::Open(FixturePath());
  ASSERT_TRUE(f.ok()) << f.status();
  std::vector<TensorOut> out;
  for (const TensorInfo& t : f->tensors()) out.push_back({t.name, t.dtype, t.shape, f->Bytes(t)});
  TempDir dir;
  ASSERT_TRUE(WriteSafetensors(dir / "re.safetensors", out, f->metadata()).ok());
  auto g = SafetensorsFile::Open(dir / "re.safetensors");
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_TRUE(std::equal(f->data().begin(), f->data().end(), g->data().begin(), g->data().end()));
  ASSERT_EQ(g->tensors().size(), f->tensors().size());
  for (size_t i = 0; i < f->tensors().size(); ++i) {
    EXPECT_EQ(g->tensors()[i].name, f->tensors()[i].name);
    EXPECT_EQ(g->tensors()[i].begin, f->tensors()[i].begin);
  }
  EXPECT_EQ(g->metadata().at("note"), f->metadata().at("note"));
}

// ---- streaming read (StreamF32) -----------------------------------------------------------------

// A file whose tensors start at odd offsets (a 3-byte U8 tensor first), each larger than the
// smallest buffer (4096 bytes), so elements straddle the chunks; all four float dtypes, plus a
// buffer that is not a target.
struct StreamFixture {
  std::vector<float> f32, bf16v, f16v, f64v;
  std::vector<uint8_t> odd{7, 8, 9}, skip;
  std::vector<uint16_t> bf16, f16;
  std::vector<double> f64;
  std::string path;

  explicit StreamFixture(const std::string& dir) : path(dir + "/s.safetensors") {
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 3.0f);
    for (int i = 0; i < 3001; ++i) f32.push_back(nd(rng));
    for (int i = 0; i < 5003; ++i) bf16.push_back(FloatToBF16(nd(rng)));
    for (int i = 0; i < 4099; ++i) f16.push_back(FloatToHalf(nd(rng)));
    for (int i = 0; i < 1601; ++i) f64.push_back(static_cast<double>(nd(rng)) / 7.0);
    skip.assign(10007, 0x5a);
    for (uint16_t b : bf16) bf16v.push_back(BF16ToFloat(b));
    for (uint16_t h : f16) f16v.push_back(HalfToFloat(h));
    for (double d : f64) f64v.push_back(static_cast<float>(d));
    const std::vector<TensorOut> t = {
        {"odd", DType::kU8, {3}, AsBytes(odd)},
        {"a", DType::kF32, {3001}, AsBytes(f32)},
        {"b", DType::kBF16, {5003}, AsBytes(bf16)},
        {"mask", DType::kU8, {10007}, AsBytes(skip)},
        {"empty", DType::kF32, {0, 4}, {}},
        {"c", DType::kF16, {4099}, AsBytes(f16)},
        {"d", DType::kF64, {1601}, AsBytes(f64)},
    };
    EXPECT_TRUE(WriteSafetensors(path, t, {}).ok());
  }
};

TEST(SafetensorsStream, MatchesReadF32AtEveryBufferSize) {
  TempDir d;
  StreamFixture fx(d.path());
  auto whole = SafetensorsFile::Open(fx.path);
  auto head = SafetensorsFile::OpenHeader(fx.path);
  ASSERT_TRUE(whole.ok() && head.ok());
  for (uint64_t buf : {uint64_t{1}, uint64_t{4097}, uint64_t{6007}, uint64_t{1} << 20}) {
    for (int mode = 0; mode < 4; ++mode) {
      const bool verify = mode & 1, direct = mode & 2;
      for (const SafetensorsFile* f : {&*head, &*whole}) {
        std::vector<float> a(3001, -1), b(5003, -1), c(4099, -1), dd(1601, -1), e;
        // Given out of order: the stream sorts them into data-buffer order.
        const std::vector<StreamTarget> tg = {{"d", dd}, {"b", b}, {"a", a}, {"c", c}, {"empty", e}};
        Status s = f->StreamF32(tg, StreamOptions{buf, verify, direct});
        ASSERT_TRUE(s.ok()) << s << " buffer " << buf << " mode " << mode;
        EXPECT_EQ(std::memcmp(a.data(), fx.f32.data(), a.size() * 4), 0) << buf;
        EXPECT_EQ(std::memcmp(b.data(), fx.bf16v.data(), b.size() * 4), 0) << buf;
        EXPECT_EQ(std::memcmp(c.data(), fx.f16v.data(), c.size() * 4), 0) << buf;
        EXPECT_EQ(std::memcmp(dd.data(), fx.f64v.data(), dd.size() * 4), 0) << buf;
        std::vector<float> r(1601);
        ASSERT_TRUE(whole->ReadF32("d", r).ok());
        EXPECT_EQ(r, dd);
      }
    }
  }
}

TEST(SafetensorsStream, ComparesInsteadOfWriting) {
  TempDir d;
  StreamFixture fx(d.path());
  auto f = SafetensorsFile::OpenHeader(fx.path);
  ASSERT_TRUE(f.ok());
  std::vector<float> same = fx.bf16v, other = fx.bf16v;
  other[4000] = std::nextafter(other[4000], 100.0f);
  bool d1 = true, d2 = false;
  const std::vector<StreamTarget> tg = {{"b", {}, same, &d1}};
  ASSERT_TRUE(f->StreamF32(tg, StreamOptions{4096, true}).ok());
  EXPECT_FALSE(d1);
  const std::vector<StreamTarget> tg2 = {{"b", {}, other, &d2}};
  ASSERT_TRUE(f->StreamF32(tg2, StreamOptions{4096, false}).ok());
  EXPECT_TRUE(d2);
}

TEST(SafetensorsStream, CallerErrorsBeforeAnyRead) {
  TempDir d;
  StreamFixture fx(d.path());
  auto f = SafetensorsFile::OpenHeader(fx.path);
  ASSERT_TRUE(f.ok());
  std::vector<float> a(3001), small(3), o(3);
  auto expect = [&](std::vector<StreamTarget> tg, bool (Status::*kind)() const, const std::string& want) {
    Status s = f->StreamF32(tg);
    ASSERT_FALSE(s.ok()) << want;
    EXPECT_TRUE((s.*kind)()) << s;
    EXPECT_EQ(s.message().rfind(fx.path + ": ", 0), 0u) << s;
    EXPECT_NE(s.message().find(want), std::string::npos) << s << "\n  want: " << want;
  };
  expect({{"nope", a}}, &Status::IsNotFound, "no tensor 'nope'");
  expect({{"a", small}}, &Status::IsInvalidArgument, "tensor 'a' (F32 [3001]) has 3001 elements; the caller's buffer holds 3");
  expect({{"a", a}, {"a", a}}, &Status::IsInvalidArgument, "tensor 'a' (F32 [3001]) is given twice");
  expect({{"odd", o}}, &Status::IsInvalidArgument, "tensor 'odd' (U8 [3]): StreamF32 reads F64, F32, F16 or BF16");
}

// The file changes after its header was read: shorter (named by the tensor whose bytes are
// missing), longer, or damaged (the checksum, verified in the same pass).
TEST(SafetensorsStream, TruncatedGrownOrDamagedAfterTheHeader) {
  TempDir d;
  StreamFixture fx(d.path());
  const std::vector<uint8_t> good = ReadFile(fx.path);
  auto f = SafetensorsFile::OpenHeader(fx.path);
  ASSERT_TRUE(f.ok());
  const TensorInfo* c = f->Find("c");
  ASSERT_NE(c, nullptr);
  const uint64_t data0 = good.size() - f->tensors().back().end;
  std::vector<float> a(3001), b(5003), cc(4099), dd(1601);
  const std::vector<StreamTarget> tg = {{"a", a}, {"b", b}, {"c", cc}, {"d", dd}};
  auto expect = [&](bool (Status::*kind)() const, const std::string& want) {
    for (bool direct : {true, false}) {
      Status s = f->StreamF32(tg, StreamOptions{4096, true, direct});
      ASSERT_FALSE(s.ok()) << want;
      EXPECT_TRUE((s.*kind)()) << s;
      EXPECT_EQ(s.message().rfind(fx.path + ": ", 0), 0u) << s;
      EXPECT_NE(s.message().find(want), std::string::npos) << s << "\n  want: " << want;
    }
  };
  // Cut in the middle of tensor 'c'.
  const uint64_t cut = data0 + c->begin + 1000;
  WriteFile(fx.path, std::vector<uint8_t>(good.begin(), good.begin() + static_cast<ptrdiff_t>(cut)));
  expect(&Status::IsCorruption, "tensor 'c' (file offsets " + std::to_string(data0 + c->begin));
  expect(&Status::IsCorruption, "the file ends at byte " + std::to_string(cut) + ", but its header says " +
                                    std::to_string(good.size()));
  std::vector<uint8_t> longer = good;
  longer.push_back(0);
  WriteFile(fx.path, longer);
  expect(&Status::IsCorruption, "bytes, but was " + std::to_string(good.size()) + " when its header was read");
  std::vector<uint8_t> flipped = good;
  flipped[data0 + c->begin + 5] ^= 0x10;
  WriteFile(fx.path, flipped);
  expect(&Status::IsCorruption, "checksum mismatch: metadata \"strata.xxh3\"");
  // Without the checksum the flip goes unseen: that is what verify_checksum = false means.
  EXPECT_TRUE(f->StreamF32(tg, StreamOptions{4096, false}).ok());
  std::filesystem::remove(fx.path);
  Status s = f->StreamF32(tg);
  EXPECT_TRUE(s.IsNotFound()) << s;
  // Intact again: reads.
  WriteFile(fx.path, good);
  EXPECT_TRUE(f->StreamF32(tg).ok());
}

// LoadCheckpoint streams each shard: a sharded BF16 checkpoint loads exactly; a stored tied head
// placed before the embedding (compared in a second read of its bytes) is accepted when equal and
// refused when it differs; a shard damaged or cut is refused by name.
TEST(SafetensorsStream, LoadCheckpointStreamsShards) {
  ModelConfig cfg;
  cfg.arch = "llama";
  cfg.n_layer = 2, cfg.n_head = 4, cfg.n_kv_head = 2, cfg.n_embd = 32, cfg.n_mlp = 48, cfg.vocab = 101, cfg.n_ctx = 16;
  std::vector<float> w(cfg.NumParams());
  InitWeights(cfg, 3, w);
  TempDir d;
  SaveOptions so;
  so.dtype = DType::kBF16;
  so.max_shard_bytes = 8192;
  ASSERT_TRUE(SaveCheckpoint(d.path(), cfg, w, so).ok());
  auto m = Model::Create(cfg, 1);
  ASSERT_TRUE(m.ok());
  Status s = LoadCheckpoint(d.path(), **m);
  ASSERT_TRUE(s.ok()) << s;
  for (size_t i = 0; i < w.size(); ++i) ASSERT_EQ((*m)->params()[i], BF16ToFloat(FloatToBF16(w[i]))) << i;

  // One file, lm_head.weight first (before the embedding it must equal).
  TempDir u;
  ASSERT_TRUE(SaveCheckpoint(u.path(), cfg, w, {}).ok());
  auto f = SafetensorsFile::Open(u / "model.safetensors");
  ASSERT_TRUE(f.ok());
  auto rewrite = [&](bool flip) {
    std::vector<uint8_t> head(f->Bytes(f->tensors()[0]).begin(), f->Bytes(f->tensors()[0]).end());
    ASSERT_EQ(f->tensors()[0].name, "model.embed_tokens.weight");
    if (flip) head[9] ^= 1;
    std::vector<TensorOut> t = {{"lm_head.weight", DType::kF32, f->tensors()[0].shape, head}};
    for (const TensorInfo& x : f->tensors()) t.push_back({x.name, x.dtype, x.shape, f->Bytes(x)});
    ASSERT_TRUE(WriteSafetensors(u / "model.safetensors", t, f->metadata()).ok());
  };
  rewrite(false);
  s = LoadCheckpoint(u.path(), **m);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(std::memcmp((*m)->params().data(), w.data(), w.size() * 4), 0);
  rewrite(true);
  s = LoadCheckpoint(u.path(), **m);
  EXPECT_TRUE(s.IsInvalidArgument()) << s;
  EXPECT_NE(s.message().find("model.safetensors: lm_head.weight differs from model.embed_tokens.weight"),
            std::string::npos) << s;

  // A flipped byte in the second shard, then that shard cut short.
  auto paths = FindCheckpoint(d.path());
  ASSERT_TRUE(paths.ok() && paths->shards.size() >= 3) << paths.status();
  const std::string shard = paths->shards[1];
  std::vector<uint8_t> bytes = ReadFile(shard);
  ASSERT_GT(bytes.size(), 100u);
  bytes[bytes.size() - 3] ^= 4;
  WriteFile(shard, bytes);
  s = LoadCheckpoint(d.path(), **m);
  EXPECT_TRUE(s.IsCorruption()) << s;
  EXPECT_NE(s.message().find(shard + ": checksum mismatch"), std::string::npos) << s;
  bytes.resize(bytes.size() - 10);
  WriteFile(shard, bytes);
  s = LoadCheckpoint(d.path(), **m);
  EXPECT_TRUE(s.IsCorruption()) << s;
  EXPECT_NE(s.message().find(shard + ": tensor '"), std::string::npos) << s;
}

}  // namespace
}  // namespace strata::model
