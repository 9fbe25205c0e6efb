// A std::vector allocator that aligns every buffer to 64 bytes (a cache line, an AVX-512 register).
// Vectorised reductions handle an unaligned head element by element, so the order in which they
// add (and so the rounding) depends on a buffer's address modulo 64. malloc's addresses differ
// from process to process; aligned buffers make a resumed run add in the same order as the run
// it continues.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace strata {

template <typename T, size_t kAlign = 64>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U, kAlign>&) {}  // NOLINT: rebinding
  template <typename U>
  struct rebind {
    using other = AlignedAllocator<U, kAlign>;
  };
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(kAlign))); }
  void deallocate(T* p, size_t n) { ::operator delete(p, n * sizeof(T), std::align_val_t(kAlign)); }
  bool operator==(const AlignedAllocator&) const { return true; }
};

template <typename T>
using AlignedVector = std::vector<T, AlignedAllocator<T>>;

}  // namespace strata
