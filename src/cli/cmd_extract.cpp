// songlines extract --input PATH... --output DIR [--jobs N] [--resume] [--catalog CSV] [--device ...]
//                   [--features a,b] [--shard-size N]
#include <iostream>

#include "cli/command.h"
#include "core/error.h"
#include "extract/extract.h"

namespace songlines::cli {
namespace {

cxxopts::Options extract_options() {
  cxxopts::Options o(
      "songlines extract",
      "Audio files and folders to HDF5 shards (DIR/shard-00000.h5, ...) and DIR/features.csv in the seed "
      "pipeline's layout (time means of MFCC, chroma, spectral contrast, tonnetz). Folders are walked for audio "
      "files; files that cannot be decoded are skipped and listed at the end with the reason.\n\n"
      "Exit status: 0 every file extracted; 3 some files failed (every good track is in the shards); "
      "1 nothing could be extracted; 2 bad usage.\n"
      "Resume: after an interruption (even kill -9), run the same command with --resume; committed shards are "
      "kept (DIR/.extract-journal lists them), unfinished ones are deleted and their tracks redone.");
  o.add_options()("i,input", "audio file or folder (repeat, or comma-separate)", cxxopts::value<std::vector<std::string>>())(
      "o,output", "output folder", cxxopts::value<std::string>())(
      "j,jobs", "worker threads (default: all cores)", cxxopts::value<int>()->default_value("0"))(
      "resume", "continue an interrupted extraction in the output folder")(
      "catalog", "metadata CSV: a row finds its file by a `path`/`file` column, else track_id == file stem",
      cxxopts::value<std::string>())(
      "device", "cpu, cuda or auto", cxxopts::value<std::string>()->default_value("auto"))(
      "features", "comma-separated features for the shards (default: mfcc,chroma_stft,spectral_contrast,tonnetz,mel_db)",
      cxxopts::value<std::vector<std::string>>())(
      "shard-size", "tracks per shard", cxxopts::value<int64_t>()->default_value("256"))(
      "no-progress", "no progress bar");
  o.custom_help("--input PATH... --output DIR [options]");
  return o;
}

int extract_main(const cxxopts::ParseResult& args) {
  if (!args.count("input")) throw UsageError("extract: missing --input (audio files or folders)");
  if (!args.count("output")) throw UsageError("extract: missing --output (a folder)");
  extract::ExtractOptions o;
  for (const auto& p : args["input"].as<std::vector<std::string>>()) o.inputs.emplace_back(p);
  o.output_dir = args["output"].as<std::string>();
  o.jobs = args["jobs"].as<int>();
  o.resume = args.count("resume") > 0;
  if (args.count("catalog")) o.catalog = args["catalog"].as<std::string>();
  o.device = features::parse_device(args["device"].as<std::string>());
  if (args.count("features")) o.feature_options.features = args["features"].as<std::vector<std::string>>();
  o.shard_size = args["shard-size"].as<int64_t>();
  if (args.count("no-progress")) o.progress = ProgressMode::kQuiet;

  extract::ExtractResult r = extract::run_extract(o);
  std::cout << "extracted " << r.tracks_written << " tracks (" << r.frames_written << " frames, " << r.audio_seconds
            << " s of audio) in " << r.wall_seconds << " s on " << features::device_name(r.device) << " with "
            << r.jobs << " threads";
  if (r.tracks_resumed) std::cout << "; " << r.tracks_resumed << " already extracted (resumed)";
  std::cout << "\n" << r.shards.size() << " shards and features.csv in " << o.output_dir.string() << "\n";
  if (!r.skipped.empty()) {
    std::cerr << "warning: " << r.skipped.size() << " folder entries skipped:\n";
    for (const auto& f : r.skipped) std::cerr << "  " << f.path << ": " << f.reason << "\n";
  }
  if (!r.failed.empty()) {
    std::cerr << r.failed.size() << " files failed:\n";
    for (const auto& f : r.failed) std::cerr << "  " << f.path << ": " << f.reason << "\n";
  }
  return extract::extract_exit_status(r);
}

SONGLINES_REGISTER_COMMAND(Command{"extract", "audio files and folders to feature shards and features.csv",
                                   extract_options, extract_main, {},
                                   {"songlines extract --input music/ --output shards/ --jobs 2",
                                    "songlines extract --input music/ --output shards/ --catalog catalog.csv --resume"}});

}  // namespace
}  // namespace songlines::cli
