// songlines reconstruct --model RUN_DIR --input FILE [--lat LAT --lon LON] --output OUT.wav
// Encode and decode a track under its own place: what the model keeps of it.
#include "cli/command.h"
#include "cli/vae_command.h"
#include "core/error.h"

namespace songlines::cli {
namespace {

cxxopts::Options reconstruct_options() {
  cxxopts::Options o("songlines reconstruct", "Encode and decode a track with a VAE (listen to what it keeps)");
  o.custom_help("--model RUN_DIR --input FILE --output OUT.wav");
  o.add_options()("model", "VAE run directory", cxxopts::value<std::string>())(
      "input", "audio file", cxxopts::value<std::string>())(
      "lat", "the track's latitude (default: the training centroid)", cxxopts::value<double>())(
      "lon", "the track's longitude", cxxopts::value<double>());
  add_transfer_options(o);
  return o;
}

int reconstruct_main(const cxxopts::ParseResult& a) {
  for (const char* k : {"model", "input", "output"})
    if (!a.count(k)) throw UsageError(std::string("reconstruct: --") + k + " is required");
  auto bundle = load_vae_of_options(a);
  geo::LatLon place = bundle.default_place;
  if (a.count("lat") != a.count("lon")) throw UsageError("reconstruct: --lat and --lon go together");
  if (a.count("lat")) place = {a["lat"].as<double>(), a["lon"].as<double>()};
  if (!geo::is_valid(place)) throw UsageError("reconstruct: coordinates out of range");
  transfer_input_file(a, bundle, place, place);
  return 0;
}

SONGLINES_REGISTER_COMMAND(Command{"reconstruct", "encode and decode a track with a VAE (what the model keeps)",
                                   reconstruct_options, reconstruct_main, {},
                                   {"songlines reconstruct --model runs/quickstart/vae --input song.wav --output kept.wav"}});

}  // namespace
}  // namespace songlines::cli
