// songlines extract --input PATH... --output DIR [--jobs N] [--resume] [--catalog CSV] [--device ...]
//                   [--features a,b] [--shard-size N] [--part K/N | --emit slurm --parts N]
#include <algorithm>
#include <iostream>
#include <thread>

#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "extract/extract.h"
#include "extract/partition.h"

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
      "device",
      "cpu (the FFTW reference engine, one track per thread), host (the device engine on the CPU: ragged batches, "
      "Thrust OpenMP), cuda or auto (cuda when a GPU is usable, else cpu)",
      cxxopts::value<std::string>()->default_value("auto"))(
      "batch-frames", "STFT frames per device batch (host and cuda; default 8192 on the host, 131072 on CUDA)",
      cxxopts::value<int64_t>()->default_value("0"))(
      "features", "comma-separated features for the shards (default: mfcc,chroma_stft,spectral_contrast,tonnetz,mel_db)",
      cxxopts::value<std::vector<std::string>>())(
      "shard-size", "tracks per shard", cxxopts::value<int64_t>()->default_value("256"))(
      "no-progress", "no progress bar");
  o.add_options("many machines (docs/extract.md)")(
      "part", "extract only part K of N (K from 1) of the sorted file list, into OUTPUT/part-K-of-N",
      cxxopts::value<std::string>())(
      "emit", "write a scheduler script instead of extracting: slurm (a job array of --parts tasks)",
      cxxopts::value<std::string>())(
      "parts", "number of parts (array tasks) for --emit slurm", cxxopts::value<int>());
  o.custom_help("--input PATH... --output DIR [options]");
  return o;
}

namespace fs = std::filesystem;

/// --emit slurm --parts N: OUTPUT/extract.slurm, a job array whose task K runs --part K/N.
int emit_slurm(const cxxopts::ParseResult& args, extract::ExtractOptions o) {
  if (!args.count("emit")) throw UsageError("extract --parts: only with --emit slurm (one machine runs --part K/N)");
  if (args["emit"].as<std::string>() != "slurm")
    throw UsageError("extract --emit: unknown \"" + args["emit"].as<std::string>() + "\" (slurm)");
  if (!args.count("parts")) throw UsageError("extract --emit slurm: missing --parts N (the number of array tasks)");
  if (o.part) throw UsageError("extract --part: not with --emit (array task K runs --part K/N itself)");
  extract::SlurmExtractOptions slurm;
  slurm.parts = args["parts"].as<int>();
  if (slurm.parts < 1) throw UsageError("extract --parts: must be >= 1, got " + std::to_string(slurm.parts));
  // What run_extract would refuse, refused now rather than in every array task.
  if (o.shard_size < 1) throw UsageError("extract: --shard-size must be >= 1, got " + std::to_string(o.shard_size));
  if (!o.feature_options.features.empty()) o.feature_options.validate();
  if (o.max_batch_frames < 0 || (o.max_batch_frames != 0 && o.device == features::Device::kCpu))
    throw UsageError("extract --batch-frames: a frame count >= 0, for the device engine only (--device host or cuda)");
  slurm.executable = fs::read_symlink("/proc/self/exe");
  if (o.jobs > 0) slurm.cpus_per_task = o.jobs;
  slurm.gpu = o.device == features::Device::kCuda;
  o.output_dir = fs::absolute(o.output_dir).lexically_normal();
  // The list now, so that a typo in --input shows here and not in N failed tasks.
  std::vector<extract::FailedFile> missing;
  const auto files = extract::find_audio_files(o.inputs, missing).files.size();
  if (!missing.empty()) throw UsageError("extract --emit slurm: --input " + missing[0].path + ": " + missing[0].reason);
  if (files == 0) throw UsageError("extract --emit slurm: no audio files in the inputs");
  fs::create_directories(o.output_dir);
  const fs::path script = o.output_dir / "extract.slurm";
  write_file_atomic(script, extract::extract_slurm_script(o, slurm));
  fs::permissions(script, fs::perms::owner_exec | fs::perms::group_exec, fs::perm_options::add);
  const auto [first_begin, first_end] = extract::part_range(files, {1, slurm.parts});
  const auto [last_begin, last_end] = extract::part_range(files, {slurm.parts, slurm.parts});
  std::cout << "Slurm job array: " << script.string() << "\n"
            << slurm.parts << " tasks over " << files << " audio files, " << last_end - last_begin
            << (first_end - first_begin != last_end - last_begin ? " to " + std::to_string(first_end - first_begin) : "")
            << " files per part"
            << (files < static_cast<size_t>(slurm.parts)
                    ? " (" + std::to_string(slurm.parts - files) + " parts are empty: fewer files than parts)"
                    : std::string())
            << "\n"
            << "submit with: sbatch " << script.string() << "\n"
            << "then train on all parts with data.shards = [\"" << (o.output_dir / ("part-*-of-" + std::to_string(slurm.parts))).string()
            << "\"]\n";
  return 0;
}

int extract_main(const cxxopts::ParseResult& args) {
  if (!args.count("input")) throw UsageError("extract: missing --input (audio files or folders)");
  if (!args.count("output")) throw UsageError("extract: missing --output (a folder)");
  extract::ExtractOptions o;
  for (const auto& p : args["input"].as<std::vector<std::string>>()) o.inputs.emplace_back(p);
  o.output_dir = args["output"].as<std::string>();
  o.jobs = args["jobs"].as<int>();
  // More workers than a few per core only costs memory (each holds a decoded track and scratch buffers).
  const int most_jobs = 4 * static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (o.jobs < 0 || o.jobs > most_jobs)
    throw UsageError("extract --jobs: must be 0 (every core) to " + std::to_string(most_jobs) +
                     " (4 per hardware thread), got " + std::to_string(o.jobs));
  o.resume = args.count("resume") > 0;
  if (args.count("catalog")) o.catalog = args["catalog"].as<std::string>();
  o.device = features::parse_device(args["device"].as<std::string>(), features::HostDevice::kAccepted);
  o.max_batch_frames = args["batch-frames"].as<int64_t>();
  if (args.count("features")) o.feature_options.features = args["features"].as<std::vector<std::string>>();
  o.shard_size = args["shard-size"].as<int64_t>();
  if (args.count("no-progress")) o.progress = ProgressMode::kQuiet;
  if (args.count("part")) o.part = extract::parse_part(args["part"].as<std::string>());
  if (args.count("emit") || args.count("parts")) return emit_slurm(args, o);

  extract::ExtractResult r = extract::run_extract(o);
  std::cout << "extracted " << r.tracks_written << " tracks (" << r.frames_written << " frames, " << r.audio_seconds
            << " s of audio) in " << r.wall_seconds << " s on " << features::device_name(r.device) << " with "
            << r.jobs << " threads";
  if (r.device_batches) std::cout << " in " << r.device_batches << " device batches";
  if (r.tracks_resumed) std::cout << "; " << r.tracks_resumed << " already extracted (resumed)";
  std::cout << "\n" << r.shards.size() << " shards and features.csv in " << r.output_dir.string() << "\n";
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
