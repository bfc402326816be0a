// The steps the commands on a VAE run directory share (generate, reconstruct, transfer): their common options,
// loading the VAE named by --model on --device with its --vocoder, and moving the --input track from one place to
// another into --output.
#pragma once

#include <cxxopts.hpp>

#include <iostream>
#include <string>

#include "audio/audio_file.h"
#include "generate/vae_generator.h"
#include "models/torch_compat.h"

namespace songlines::cli {

/// Adds --device and --vocoder, which load_vae_of_options reads beside --model (each command words its own).
inline void add_vae_device_options(cxxopts::Options& o) {
  o.add_options()("device", "cpu, cuda or auto", cxxopts::value<std::string>()->default_value("auto"))(
      "vocoder", "audio path: a vocoder run directory, or griffin-lim (default: the one the VAE names, else griffin-lim)",
      cxxopts::value<std::string>());
}

/// Adds --seed, --device, --vocoder and --output, in this order: the options transfer_input_file and
/// load_vae_of_options read beside --model, --input and the places.
inline void add_transfer_options(cxxopts::Options& o) {
  o.add_options()("seed", "Griffin-Lim phase seed", cxxopts::value<uint64_t>()->default_value("0"));
  add_vae_device_options(o);
  o.add_options()("output", "WAV file to write", cxxopts::value<std::string>());
}

/// The VAE of --model on --device, with --vocoder when given (else the one the VAE names, else Griffin-Lim).
inline generate::VaeBundle load_vae_of_options(const cxxopts::ParseResult& a) {
  return generate::load_vae_bundle(a["model"].as<std::string>(), torch_compat::resolve_device(a["device"].as<std::string>()),
                                   a.count("vocoder") ? a["vocoder"].as<std::string>() : std::string());
}

/// --input (decoded at the VAE's rate) encoded under source and decoded under target with --seed, written to
/// --output.
inline void transfer_input_file(const cxxopts::ParseResult& a, generate::VaeBundle& bundle,
                                 const geo::LatLon& source, const geo::LatLon& target) {
  audio::LoadOptions lo;
  lo.sample_rate = bundle.audio.sample_rate;
  auto in = audio::load_audio(a["input"].as<std::string>(), lo);
  auto y = generate::transfer_audio(bundle, in.samples, source, target, a["seed"].as<uint64_t>());
  audio::write_audio(a["output"].as<std::string>(), y.data(), static_cast<int64_t>(y.size()), bundle.audio.sample_rate);
  std::cerr << "wrote " << a["output"].as<std::string>() << "\n";
}

}  // namespace songlines::cli
