// The CUDA side of the device abstraction: is a GPU here, and which. Compiled only when nvcc is
// found (STRATA_HAVE_CUDA); without a GPU or driver every call returns Unavailable with the reason.
#pragma once

#include <string>

#include "runtime/status.h"

namespace strata::cuda {

// OK with a one-line description ("NVIDIA H100 80GB HBM3, sm_90, 79.1 GiB") when a device can run
// strata's kernels; Unavailable naming the reason (no driver, no device) otherwise.
[[nodiscard]] Result<std::string> DeviceDescription();

}  // namespace strata::cuda
