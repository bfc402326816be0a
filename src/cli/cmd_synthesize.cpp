// songlines synthesize [--output DIR]: synthesize the built-in synthetic set (extract/synthetic_set.h), extract
// its features and print a summary. `songlines quickstart` is its old name, kept for scripts (docs/extract.md);
// the main job is `songlines run experiments/quickstart.json`.
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "cli/command.h"
#include "core/error.h"
#include "extract/synthetic_set.h"
#include "shards/shard.h"

namespace songlines::cli {
namespace {

cxxopts::Options synthesize_options(const std::string& name) {
  cxxopts::Options o("songlines " + name,
                     "A synthetic data set: synthesizes a few seeded music-like tracks (different scales, "
                     "tempi, timbres; nothing downloaded), writes them to DIR/audio/*.wav, extracts their features "
                     "into DIR/features (shards + features.csv) and prints a summary. Rerunning replaces "
                     "DIR/features.");
  // The old name keeps its old default folder.
  const std::string output = name == "quickstart" ? "runs/quickstart" : "runs/synthetic";
  o.add_options()("o,output", "output folder", cxxopts::value<std::string>()->default_value(output))(
      "tracks", "number of synthetic tracks", cxxopts::value<int>()->default_value("8"))(
      "seconds", "length of each track", cxxopts::value<double>()->default_value("8"))(
      "seed", "synthesizer seed", cxxopts::value<uint64_t>()->default_value("2024"))(
      "j,jobs", "worker threads (default: all cores)", cxxopts::value<int>()->default_value("0"))(
      "device", "cpu, cuda or auto", cxxopts::value<std::string>()->default_value("auto"));
  return o;
}

int synthesize_main(const std::string& name, const cxxopts::ParseResult& args) {
  extract::SyntheticSetOptions o;
  o.output_dir = args["output"].as<std::string>();
  o.n_tracks = args["tracks"].as<int>();
  o.seconds = args["seconds"].as<double>();
  o.seed = args["seed"].as<uint64_t>();
  o.jobs = args["jobs"].as<int>();
  o.device = features::parse_device(args["device"].as<std::string>());
  std::cout << "songlines " << name << ": synthesizing " << o.n_tracks << " tracks of " << o.seconds << " s into "
            << (o.output_dir / "audio").string() << "\n";
  const extract::SyntheticSet r = extract::synthesize_and_extract(o);
  const auto& e = r.extract;
  for (const auto& f : e.failed) std::cerr << "  failed: " << f.path << ": " << f.reason << "\n";

  std::printf("\nextracted %lld tracks, %lld frames, %.1f s of audio in %.2f s (%.0fx real time, %s, %d threads)\n",
              static_cast<long long>(e.tracks_written), static_cast<long long>(e.frames_written), e.audio_seconds,
              e.wall_seconds, e.wall_seconds > 0 ? e.audio_seconds / e.wall_seconds : 0.0,
              features::device_name(e.device), e.jobs);
  if (e.shards.empty()) throw Error(name + ": no shard was written");
  shards::ShardReader reader(e.shards.front());
  std::printf("shards: %zu in %s (features.csv beside them)\nfeature dims:", e.shards.size(), r.features_dir.c_str());
  for (const auto& name : reader.frame_feature_names()) std::printf(" %s %lld", name.c_str(), static_cast<long long>(reader.frame_dim(name)));
  std::printf("\n\nper-track time means (first coefficients; full table in features.csv):\n");
  // Table: track, seconds, frames, MFCC1, MFCC2, strongest chroma, spectral contrast (band 1), tonnetz 1.
  static const char* kPitch[] = {"C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"};
  auto mean_of = [&](const std::string& f, int64_t* dim) {
    auto names = reader.summary_feature_names();
    if (std::find(names.begin(), names.end(), f) == names.end()) {
      *dim = 0;
      return std::vector<double>();
    }
    return reader.read_summary_mean(f, dim);
  };
  int64_t d_mfcc = 0, d_chroma = 0, d_sc = 0, d_ton = 0;
  auto mfcc = mean_of("mfcc", &d_mfcc);
  auto chroma = mean_of("chroma_stft", &d_chroma);
  auto sc = mean_of("spectral_contrast", &d_sc);
  auto ton = mean_of("tonnetz", &d_ton);
  std::printf("%-32s %6s %6s %9s %8s %7s %9s %9s\n", "track", "sec", "frames", "MFCC1", "MFCC2", "chroma", "SpecCon1",
              "Tonnetz1");
  for (int64_t t = 0; t < reader.size(); ++t) {
    const auto i = static_cast<size_t>(t);
    int best = 0;
    for (int64_t k = 1; k < d_chroma; ++k)
      if (chroma[i * d_chroma + k] > chroma[i * d_chroma + best]) best = static_cast<int>(k);
    std::printf("%-32s %6.1f %6lld %9.2f %8.2f %7s %9.2f %9.3f\n", reader.ids()[i].c_str(), reader.durations()[i],
                static_cast<long long>(reader.offsets().empty() ? 0 : reader.offsets()[i + 1] - reader.offsets()[i]),
                d_mfcc ? mfcc[i * d_mfcc] : 0.0, d_mfcc > 1 ? mfcc[i * d_mfcc + 1] : 0.0, d_chroma ? kPitch[best % 12] : "-",
                d_sc ? sc[i * d_sc] : 0.0, d_ton ? ton[i * d_ton] : 0.0);
  }
  std::printf("\nnext: the shard format is in docs/shard-format.md; `songlines extract --input YOUR_MUSIC --output DIR` "
              "does the same for real audio.\n");
  return extract::extract_exit_status(e);
}

Command synthesize_command(const std::string& name, const std::string& summary) {
  return Command{name, summary, [name] { return synthesize_options(name); },
                 [name](const cxxopts::ParseResult& a) { return synthesize_main(name, a); }, {},
                 {"songlines " + name + " --output runs/synthetic --tracks 16 --seconds 6"}};
}

SONGLINES_REGISTER_COMMAND(synthesize_command("synthesize", "a synthetic data set: seeded music-like audio -> features -> summary"));
SONGLINES_REGISTER_COMMAND(synthesize_command("quickstart", "old name of `synthesize` (the main job is `run experiments/quickstart.json`)"));

}  // namespace
}  // namespace songlines::cli
