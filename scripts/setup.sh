#!/usr/bin/env bash
# Installs the Debian 12 packages strata needs to build and test. Idempotent: installs only what
# is missing, and does nothing (no network) when everything is already there. Needs root or sudo.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libgtest-dev libgmock-dev          # tests
  libcli11-dev                       # command line of tools/strata
  nlohmann-json3-dev                 # benchmark JSON output
  liburing-dev                       # offload/: io_uring
  libboost-dev                       # runtime/: Asio io_context and C++20 coroutines
  libxxhash-dev                      # offload/: XXH3 checksums of state slots
  libeigen3-dev                      # model/: matrix products of forward and backward
  libpcre2-dev                       # model/: the GPT-2 pre-tokenizer's regular expression
  libzmq3-dev cppzmq-dev             # net/: the swarm's sockets, CURVE-encrypted (ZeroMQ 4.3)
  libsodium-dev                      # net/: Ed25519 identities and signatures
  libssl-dev                         # net/: SHA-256 of frame payloads (OpenSSL's libcrypto)
  fortunes                           # the default corpus of `strata finetune` (real English text)
  clang-14 libclang-rt-14-dev        # tests/fuzz/: libFuzzer with ASan + UBSan (fuzz.*_20s; skipped without)
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#PACKAGES[@]} Debian packages present"
else
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    SUDO="sudo"
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# CUDA is optional: the build compiles the CUDA kernels when nvcc is found.
if command -v nvcc >/dev/null || [[ -x /usr/local/cuda/bin/nvcc ]]; then
  echo "setup: CUDA toolkit found (kernels will be compiled)"
else
  echo "setup: no CUDA toolkit (nvcc) found: building the CPU backend only"
fi
