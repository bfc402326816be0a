// A random generator's state as text for a checkpoint's JSON, and back: a generator given that state draws what
// the saved one would have drawn next. Used by the location trainer's and the VAE's checkpoints, so that a
// resumed run draws exactly what an uninterrupted one draws.
#pragma once

#include <string>

#include <ATen/core/Generator.h>

namespace songlines::train {

/// The generator's state (get_state) as lowercase hex.
std::string generator_state_hex(at::Generator& generator);

/// Sets the generator's state from generator_state_hex's text; InputError naming `where` on text that is not hex.
void restore_generator_state_hex(at::Generator& generator, const std::string& hex, const std::string& where);

}  // namespace songlines::train
