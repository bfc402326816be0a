// songlines transfer --model RUN_DIR --input FILE --lat LAT --lon LON [--source-lat LAT --source-lon LON]
//                    --output OUT.wav
// songlines reconstruct is in cmd_reconstruct.cpp; both encode a real track and decode it under a condition.
#include <iostream>

#include "audio/audio_file.h"
#include "cli/command.h"
#include "core/error.h"
#include "generate/vae_generator.h"
#include "models/torch_compat.h"

namespace songlines::cli {
namespace {

cxxopts::Options transfer_options() {
  cxxopts::Options o("songlines transfer", "Encode a real track and decode it under another place's condition");
  o.custom_help("--model RUN_DIR --input FILE --lat LAT --lon LON --output OUT.wav");
  o.add_options()("model", "VAE run directory", cxxopts::value<std::string>())(
      "input", "audio file", cxxopts::value<std::string>())("lat", "target latitude", cxxopts::value<double>())(
      "lon", "target longitude", cxxopts::value<double>())(
      "source-lat", "the track's own latitude (default: the training centroid)", cxxopts::value<double>())(
      "source-lon", "the track's own longitude", cxxopts::value<double>())(
      "seed", "Griffin-Lim phase seed", cxxopts::value<uint64_t>()->default_value("0"))(
      "device", "cpu, cuda or auto", cxxopts::value<std::string>()->default_value("auto"))(
      "vocoder", "audio path: a vocoder run directory, or griffin-lim (default: the one the VAE names, else griffin-lim)",
      cxxopts::value<std::string>())(
      "output", "WAV file to write", cxxopts::value<std::string>());
  return o;
}

int transfer_main(const cxxopts::ParseResult& a) {
  for (const char* k : {"model", "input", "lat", "lon", "output"})
    if (!a.count(k)) throw UsageError(std::string("transfer: --") + k + " is required");
  auto bundle = generate::load_vae_bundle(a["model"].as<std::string>(),
                                          torch_compat::resolve_device(a["device"].as<std::string>()),
                                          a.count("vocoder") ? a["vocoder"].as<std::string>() : std::string());
  geo::LatLon target{a["lat"].as<double>(), a["lon"].as<double>()};
  geo::LatLon source = bundle.default_place;
  if (a.count("source-lat") != a.count("source-lon")) throw UsageError("transfer: --source-lat and --source-lon go together");
  if (a.count("source-lat")) source = {a["source-lat"].as<double>(), a["source-lon"].as<double>()};
  if (!geo::is_valid(target) || !geo::is_valid(source)) throw UsageError("transfer: coordinates out of range");
  audio::LoadOptions lo;
  lo.sample_rate = bundle.audio.sample_rate;
  auto in = audio::load_audio(a["input"].as<std::string>(), lo);
  auto y = generate::transfer_audio(bundle, in.samples, source, target, a["seed"].as<uint64_t>());
  audio::write_audio(a["output"].as<std::string>(), y.data(), static_cast<int64_t>(y.size()), bundle.audio.sample_rate);
  std::cerr << "wrote " << a["output"].as<std::string>() << "\n";
  return 0;
}

SONGLINES_REGISTER_COMMAND(Command{"transfer", "a real track moved to another place (encode, decode under a new condition)",
                                   transfer_options, transfer_main, {},
                                   {"songlines transfer --model runs/quickstart/vae --input song.wav --lat 35.7 --lon 139.7 --output tokyo.wav"}});

}  // namespace
}  // namespace songlines::cli
