// songlines reconstruct --model RUN_DIR --input FILE [--lat LAT --lon LON] --output OUT.wav
// Encode and decode a track under its own place: what the model keeps of it.
#include <iostream>

#include "audio/audio_file.h"
#include "cli/command.h"
#include "core/error.h"
#include "generate/vae_generator.h"
#include "models/torch_compat.h"

namespace songlines::cli {
namespace {

cxxopts::Options reconstruct_options() {
  cxxopts::Options o("songlines reconstruct", "Encode and decode a track with a VAE (listen to what it keeps)");
  o.custom_help("--model RUN_DIR --input FILE --output OUT.wav");
  o.add_options()("model", "VAE run directory", cxxopts::value<std::string>())(
      "input", "audio file", cxxopts::value<std::string>())(
      "lat", "the track's latitude (default: the training centroid)", cxxopts::value<double>())(
      "lon", "the track's longitude", cxxopts::value<double>())(
      "seed", "Griffin-Lim phase seed", cxxopts::value<uint64_t>()->default_value("0"))(
      "device", "cpu, cuda or auto", cxxopts::value<std::string>()->default_value("auto"))(
      "vocoder", "audio path: a vocoder run directory, or griffin-lim (default: the one the VAE names, else griffin-lim)",
      cxxopts::value<std::string>())(
      "output", "WAV file to write", cxxopts::value<std::string>());
  return o;
}

int reconstruct_main(const cxxopts::ParseResult& a) {
  for (const char* k : {"model", "input", "output"})
    if (!a.count(k)) throw UsageError(std::string("reconstruct: --") + k + " is required");
  auto bundle = generate::load_vae_bundle(a["model"].as<std::string>(),
                                          torch_compat::resolve_device(a["device"].as<std::string>()),
                                          a.count("vocoder") ? a["vocoder"].as<std::string>() : std::string());
  geo::LatLon place = bundle.default_place;
  if (a.count("lat") != a.count("lon")) throw UsageError("reconstruct: --lat and --lon go together");
  if (a.count("lat")) place = {a["lat"].as<double>(), a["lon"].as<double>()};
  if (!geo::is_valid(place)) throw UsageError("reconstruct: coordinates out of range");
  audio::LoadOptions lo;
  lo.sample_rate = bundle.audio.sample_rate;
  auto in = audio::load_audio(a["input"].as<std::string>(), lo);
  auto y = generate::transfer_audio(bundle, in.samples, place, place, a["seed"].as<uint64_t>());
  audio::write_audio(a["output"].as<std::string>(), y.data(), static_cast<int64_t>(y.size()), bundle.audio.sample_rate);
  std::cerr << "wrote " << a["output"].as<std::string>() << "\n";
  return 0;
}

SONGLINES_REGISTER_COMMAND(Command{"reconstruct", "encode and decode a track with a VAE (what the model keeps)",
                                   reconstruct_options, reconstruct_main, {},
                                   {"songlines reconstruct --model runs/quickstart/vae --input song.wav --output kept.wav"}});

}  // namespace
}  // namespace songlines::cli
