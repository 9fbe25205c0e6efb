// printf into a std::string, for messages and tables (no length limit).
#pragma once

#include <cstdarg>
#include <cstdio>
#include <string>

namespace strata {

__attribute__((format(printf, 1, 2))) inline std::string Fmt(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  va_list again;
  va_copy(again, ap);
  const int n = std::vsnprintf(nullptr, 0, fmt, ap);
  va_end(ap);
  std::string out(n > 0 ? static_cast<size_t>(n) : 0, '\0');
  if (n > 0) std::vsnprintf(out.data(), out.size() + 1, fmt, again);
  va_end(again);
  return out;
}

// Text as a terminal may show it: printable ASCII, newlines, tabs and well-formed UTF-8 pass;
// every other byte (control characters, C1 controls, bytes of no valid UTF-8 sequence) becomes
// \xNN, so a model's raw output can never move the cursor, recolour or retitle the terminal.
inline std::string EscapeForTerminal(const std::string& in) {
  std::string out;
  out.reserve(in.size());
  auto cont = [&](size_t i) { return i < in.size() && (static_cast<unsigned char>(in[i]) & 0xC0) == 0x80; };
  for (size_t i = 0; i < in.size();) {
    const unsigned char c = static_cast<unsigned char>(in[i]);
    size_t len = 0;
    if ((c >= 0x20 && c < 0x7F) || c == '\n' || c == '\t') {
      len = 1;
    } else if (c >= 0xC2 && c <= 0xDF && cont(i + 1)) {
      // U+0080..U+009F are the C1 controls (C2 80..C2 9F): escaped like C0.
      if (!(c == 0xC2 && static_cast<unsigned char>(in[i + 1]) < 0xA0)) len = 2;
    } else if (c >= 0xE0 && c <= 0xEF && cont(i + 1) && cont(i + 2)) {
      const unsigned char d = static_cast<unsigned char>(in[i + 1]);
      if (!(c == 0xE0 && d < 0xA0) && !(c == 0xED && d >= 0xA0)) len = 3;  // no overlong forms, no surrogates
    } else if (c >= 0xF0 && c <= 0xF4 && cont(i + 1) && cont(i + 2) && cont(i + 3)) {
      const unsigned char d = static_cast<unsigned char>(in[i + 1]);
      if (!(c == 0xF0 && d < 0x90) && !(c == 0xF4 && d >= 0x90)) len = 4;  // U+10000..U+10FFFF
    }
    if (len > 0) {
      out.append(in, i, len);
      i += len;
    } else {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
      ++i;
    }
  }
  return out;
}

}  // namespace strata
