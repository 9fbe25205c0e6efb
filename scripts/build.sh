#!/usr/bin/env bash
# Configures (once) and builds strata in Release mode into build/ (or $STRATA_BUILD_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${STRATA_BUILD_DIR:-build}
if [[ -z "${CUDACXX:-}" && ! $(command -v nvcc) && -x /usr/local/cuda/bin/nvcc ]]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi
if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=${STRATA_BUILD_TYPE:-Release}
fi
cmake --build "$BUILD_DIR" -j "${STRATA_JOBS:-$(nproc)}"
