#include "train/generator_state.h"

#include <cstdint>
#include <mutex>

#include <torch/torch.h>

#include "core/error.h"

namespace songlines::train {

std::string generator_state_hex(at::Generator& generator) {
  std::lock_guard<std::mutex> lock(generator.mutex());
  const torch::Tensor state = generator.get_state().contiguous();
  const auto* bytes = state.data_ptr<uint8_t>();
  static const char* kHex = "0123456789abcdef";
  std::string hex;
  hex.reserve(static_cast<size_t>(state.numel()) * 2);
  for (int64_t i = 0; i < state.numel(); ++i) hex.push_back(kHex[bytes[i] >> 4]), hex.push_back(kHex[bytes[i] & 15]);
  return hex;
}

void restore_generator_state_hex(at::Generator& generator, const std::string& hex, const std::string& where) {
  if (hex.size() % 2 != 0) throw InputError(where, "rng: odd hex length");
  torch::Tensor state = torch::empty({static_cast<int64_t>(hex.size() / 2)}, torch::kUInt8);
  auto* bytes = state.data_ptr<uint8_t>();
  auto nibble = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    throw InputError(where, "rng: not hex");
  };
  for (size_t i = 0; i < hex.size() / 2; ++i)
    bytes[i] = static_cast<uint8_t>(nibble(hex[2 * i]) * 16 + nibble(hex[2 * i + 1]));
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

}  // namespace songlines::train
