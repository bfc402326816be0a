// songlines generate --model RUN_DIR --lat LAT --lon LON [--seconds S] [--seed N] [--temperature T]
//                    [--from LAT,LON --to LAT,LON] --output OUT.wav
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "audio/audio_file.h"
#include "cli/command.h"
#include "cli/vae_command.h"
#include "core/error.h"
#include "generate/vae_generator.h"
#include "models/torch_compat.h"

namespace songlines::cli {
namespace {

geo::LatLon parse_place(const std::string& option, const std::string& text) {
  std::istringstream in(text);
  geo::LatLon p;
  char comma = 0;
  if (!(in >> p.lat >> comma >> p.lon) || comma != ',' || !in.eof() || !geo::is_valid(p))
    throw UsageError("--" + option + ": expected LAT,LON in degrees (e.g. 48.85,2.35), got \"" + text + "\"");
  return p;
}

cxxopts::Options generate_options() {
  cxxopts::Options o("songlines generate", "Audio for a place (or a journey) from a trained VAE run directory");
  o.custom_help("--model RUN_DIR (--lat LAT --lon LON | --from LAT,LON --to LAT,LON) --output OUT.wav");
  o.add_options()("model", "VAE run directory (checkpoints/vae.json, vae.pt)", cxxopts::value<std::string>())(
      "lat", "latitude, degrees", cxxopts::value<double>())("lon", "longitude, degrees", cxxopts::value<double>())(
      "from", "journey start LAT,LON", cxxopts::value<std::string>())(
      "to", "journey end LAT,LON (the condition moves along the great circle)", cxxopts::value<std::string>())(
      "seconds", "length of the output", cxxopts::value<double>()->default_value("10"))(
      "seed", "random seed (same seed, same audio)", cxxopts::value<uint64_t>()->default_value("0"))(
      "temperature", "scale of the latent noise", cxxopts::value<double>()->default_value("1"))(
      "griffin-lim-iterations", "phase reconstruction iterations", cxxopts::value<int>()->default_value("32"));
  add_vae_device_options(o);
  o.add_options()("output", "WAV file to write (22050 Hz unless the model says otherwise)", cxxopts::value<std::string>());
  return o;
}

int generate_main(const cxxopts::ParseResult& a) {
  if (!a.count("model")) throw UsageError("generate: --model RUN_DIR is required");
  if (!a.count("output")) throw UsageError("generate: --output OUT.wav is required");
  generate::GenerateOptions o;
  if (a.count("from") || a.count("to")) {
    if (!a.count("from") || !a.count("to")) throw UsageError("generate: --from and --to go together");
    if (a.count("lat") || a.count("lon")) throw UsageError("generate: use either --lat/--lon or --from/--to");
    o.place = parse_place("from", a["from"].as<std::string>());
    o.to = parse_place("to", a["to"].as<std::string>());
  } else {
    if (!a.count("lat") || !a.count("lon")) throw UsageError("generate: --lat and --lon are required");
    o.place = {a["lat"].as<double>(), a["lon"].as<double>()};
    if (!geo::is_valid(o.place)) throw UsageError("generate: --lat must be in [-90, 90], --lon in [-180, 180]");
  }
  o.seconds = a["seconds"].as<double>();
  o.seed = a["seed"].as<uint64_t>();
  o.temperature = a["temperature"].as<double>();
  o.griffin_lim_iterations = a["griffin-lim-iterations"].as<int>();
  auto bundle = load_vae_of_options(a);
  // One line before the long part (the mel inversion and Griffin-Lim take ~99% of the time), with an estimate
  // from the CPU rate measured in docs/benchmarks.md (about 9 s of audio per second on one core).
  constexpr double kCpuAudioSecondsPerSecond = 9.0;
  if (bundle.vocoder)
    std::fprintf(stderr, "generate: %.1f s of audio at %d Hz on %s (vocoder %s)...\n", o.seconds, bundle.audio.sample_rate,
                 bundle.device.str().c_str(), bundle.vocoder->run_dir.string().c_str());
  else
    std::fprintf(stderr, "generate: %.1f s of audio at %d Hz on %s (about %.0f s on a CPU)...\n", o.seconds,
                 bundle.audio.sample_rate, bundle.device.str().c_str(), std::ceil(o.seconds / kCpuAudioSecondsPerSecond));
  const auto t0 = std::chrono::steady_clock::now();
  auto y = generate::generate_audio(bundle, o);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  audio::write_audio(a["output"].as<std::string>(), y.data(), static_cast<int64_t>(y.size()), bundle.audio.sample_rate);
  std::cerr << "wrote " << a["output"].as<std::string>() << " (" << o.seconds << " s at " << bundle.audio.sample_rate
            << " Hz, made in " << std::fixed << std::setprecision(1) << took << " s)\n";
  return 0;
}

SONGLINES_REGISTER_COMMAND(Command{"generate", "audio for a place or a journey from a trained VAE",
                                   generate_options, generate_main, {},
                                   {"songlines generate --model runs/quickstart/vae --lat 48.85 --lon 2.35 --seconds 20 --output paris.wav",
                                    "songlines generate --model runs/quickstart/vae --from 48.85,2.35 --to 39.9,116.4 --seconds 60 --output journey.wav"}});

}  // namespace
}  // namespace songlines::cli
