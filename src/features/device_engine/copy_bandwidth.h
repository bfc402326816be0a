// Measured copy bandwidths of one device-engine backend (Chain::measure_copy_bandwidth), for the memory floors of
// `songlines bench device-features` (docs/benchmarks.md). No CUDA header.
#pragma once

namespace songlines::features {

/// Bytes per second. host_to_device and device_to_host count the bytes transferred; device_to_device counts the
/// bytes moved through device memory (a copy of B bytes reads B and writes B: 2B), so that a stage's floor is
/// (bytes it reads + bytes it writes) / device_to_device. On the host backend "device" memory is host memory.
struct CopyBandwidth {
  double host_to_device = 0.0;
  double device_to_device = 0.0;
  double device_to_host = 0.0;
};

}  // namespace songlines::features
