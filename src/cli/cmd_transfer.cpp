// songlines transfer --model RUN_DIR --input FILE --lat LAT --lon LON [--source-lat LAT --source-lon LON]
//                    --output OUT.wav
// songlines reconstruct is in cmd_reconstruct.cpp; both encode a real track and decode it under a condition.
#include "cli/command.h"
#include "cli/vae_command.h"
#include "core/error.h"

namespace songlines::cli {
namespace {

cxxopts::Options transfer_options() {
  cxxopts::Options o("songlines transfer", "Encode a real track and decode it under another place's condition");
  o.custom_help("--model RUN_DIR --input FILE --lat LAT --lon LON --output OUT.wav");
  o.add_options()("model", "VAE run directory", cxxopts::value<std::string>())(
      "input", "audio file", cxxopts::value<std::string>())("lat", "target latitude", cxxopts::value<double>())(
      "lon", "target longitude", cxxopts::value<double>())(
      "source-lat", "the track's own latitude (default: the training centroid)", cxxopts::value<double>())(
      "source-lon", "the track's own longitude", cxxopts::value<double>());
  add_transfer_options(o);
  return o;
}

int transfer_main(const cxxopts::ParseResult& a) {
  for (const char* k : {"model", "input", "lat", "lon", "output"})
    if (!a.count(k)) throw UsageError(std::string("transfer: --") + k + " is required");
  auto bundle = load_vae_of_options(a);
  geo::LatLon target{a["lat"].as<double>(), a["lon"].as<double>()};
  geo::LatLon source = bundle.default_place;
  if (a.count("source-lat") != a.count("source-lon")) throw UsageError("transfer: --source-lat and --source-lon go together");
  if (a.count("source-lat")) source = {a["source-lat"].as<double>(), a["source-lon"].as<double>()};
  if (!geo::is_valid(target) || !geo::is_valid(source)) throw UsageError("transfer: coordinates out of range");
  transfer_input_file(a, bundle, source, target);
  return 0;
}

SONGLINES_REGISTER_COMMAND(Command{"transfer", "a real track moved to another place (encode, decode under a new condition)",
                                   transfer_options, transfer_main, {},
                                   {"songlines transfer --model runs/quickstart/vae --input song.wav --lat 35.7 --lon 139.7 --output tokyo.wav"}});

}  // namespace
}  // namespace songlines::cli
