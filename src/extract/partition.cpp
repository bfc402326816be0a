#include "extract/partition.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/shell_quote.h"
#include "features/feature_options.h"

namespace songlines::extract {

namespace fs = std::filesystem;

namespace {

// Enough for any cluster, small enough that K/N never overflows an int.
constexpr int kMaxParts = 1000000;

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

/// A decimal count up to kMaxParts, or -1.
int parse_count(const std::string& s) {
  if (!all_digits(s) || s.size() > 7) return -1;
  const int v = std::stoi(s);
  return v <= kMaxParts ? v : -1;
}

/// "part-K-of-N" -> N (K and N decimal), else -1.
int parts_of_dir_name(const std::string& name) {
  if (name.rfind("part-", 0) != 0) return -1;
  const auto of = name.find("-of-", 5);
  if (of == std::string::npos || !all_digits(name.substr(5, of - 5))) return -1;
  return parse_count(name.substr(of + 4));
}

}  // namespace

ExtractPart parse_part(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return UsageError("extract --part: expected K/N with 1 <= K <= N (e.g. --part 3/8), got \"" + text + "\": " + why);
  };
  const auto slash = text.find('/');
  if (slash == std::string::npos) throw bad("no '/'");
  const std::string k_text = text.substr(0, slash), n_text = text.substr(slash + 1);
  const int k = parse_count(k_text), n = parse_count(n_text);
  if (k < 0) throw bad("K is not a number (up to " + std::to_string(kMaxParts) + ")");
  if (n < 0) throw bad("N is not a number (up to " + std::to_string(kMaxParts) + ")");
  if (n < 1) throw bad("N must be >= 1");
  if (k < 1) throw bad("K counts from 1");
  if (k > n) throw bad("K is larger than N");
  return {k, n};
}

std::pair<size_t, size_t> part_range(size_t n, ExtractPart part) {
  if (part.count < 1 || part.index < 1 || part.index > part.count)
    throw Error("part_range: invalid part " + std::to_string(part.index) + "/" + std::to_string(part.count));
  const size_t parts = static_cast<size_t>(part.count), k = static_cast<size_t>(part.index - 1);
  const size_t base = n / parts, extra = n % parts;
  const size_t begin = k * base + std::min(k, extra);
  return {begin, begin + base + (k < extra ? 1 : 0)};
}

std::string part_dir_name(ExtractPart part) {
  std::string k = std::to_string(part.index);
  const std::string n = std::to_string(part.count);
  if (k.size() < n.size()) k.insert(0, n.size() - k.size(), '0');
  return "part-" + k + "-of-" + n;
}

void check_sibling_parts(const fs::path& output, ExtractPart part) {
  std::error_code ec;
  if (!fs::is_directory(output, ec)) return;
  for (const auto& e : fs::directory_iterator(output, ec)) {
    const std::string name = e.path().filename().string();
    const int m = parts_of_dir_name(name);
    if (m >= 0 && m != part.count && e.is_directory(ec))
      throw UsageError("extract --part " + std::to_string(part.index) + "/" + std::to_string(part.count) + ": " +
                       output.string() + " already holds " + name + ", a part of a split into " + std::to_string(m) +
                       "; every part of one extraction needs the same N (or choose another --output)");
  }
}

std::vector<std::string> unique_track_ids(const AudioFileList& list, const Catalog& catalog) {
  std::vector<std::string> ids;
  ids.reserve(list.files.size());
  std::set<std::string> used;
  for (size_t i = 0; i < list.files.size(); ++i) {
    std::string base = list.ids[i];
    if (auto meta = catalog.find(list.files[i]); meta && !meta->track_id.empty()) base = meta->track_id;
    std::string id = base;
    for (int k = 2; used.count(id); ++k) id = base + "#" + std::to_string(k);
    used.insert(id);
    ids.push_back(std::move(id));
  }
  return ids;
}

std::vector<std::string> part_command_args(const ExtractOptions& o) {
  auto absolute = [](const fs::path& p) { return fs::absolute(p).lexically_normal().string(); };
  std::vector<std::string> args;
  for (const auto& in : o.inputs) args.insert(args.end(), {"--input", absolute(in)});
  args.insert(args.end(), {"--output", absolute(o.output_dir)});
  if (!o.catalog.empty()) args.insert(args.end(), {"--catalog", absolute(o.catalog)});
  args.insert(args.end(), {"--device", features::device_name(o.device)});
  if (o.max_batch_frames != 0) args.insert(args.end(), {"--batch-frames", std::to_string(o.max_batch_frames)});
  if (!o.feature_options.features.empty()) {
    std::string list;
    for (const auto& f : o.feature_options.features) list += (list.empty() ? "" : ",") + f;
    args.insert(args.end(), {"--features", list});
  }
  args.insert(args.end(), {"--shard-size", std::to_string(o.shard_size)});
  return args;
}

std::string extract_slurm_script(const ExtractOptions& options, const SlurmExtractOptions& slurm) {
  if (slurm.parts < 1) throw UsageError("extract --parts: must be >= 1, got " + std::to_string(slurm.parts));
  const fs::path out = options.output_dir;
  const std::string n = std::to_string(slurm.parts);
  std::ostringstream s;
  s << "#!/bin/bash\n"
    << "# Slurm job array for `songlines extract` in " << n << " parts, written by "
    << "`songlines extract --emit slurm --parts " << n << "`.\n"
    << "# Submit with: sbatch " << (out / "extract.slurm").string() << "\n"
    << "# Array task K extracts part K/" << n << " of the sorted file list (a contiguous range) into "
    << out.string() << "/{" << part_dir_name({1, slurm.parts}) << " .. " << part_dir_name({slurm.parts, slurm.parts})
    << "}/,\n"
    << "# on shared storage. Tasks run with --resume: a resubmitted task keeps its part's committed shards and\n"
    << "# extracts the rest, so resubmitting (all, or sbatch --array=K for one) redoes only what is missing.\n"
    << "# Train on all parts with a run config whose data names them: \"shards\": [\""
    << (out / ("part-*-of-" + n)).string() << "\"]\n"
    << "#SBATCH --job-name=songlines-extract\n"
    << "#SBATCH --array=1-" << n << "\n"
    << "#SBATCH --output=" << sbatch_quote((out / "slurm-%A_%a.out").string()) << "\n"
    << "#SBATCH --ntasks=1\n"
    << "#SBATCH --cpus-per-task=" << slurm.cpus_per_task << "\n";
  if (slurm.gpu)
    s << "#SBATCH --gres=gpu:1\n";
  else
    s << "# For the CUDA engine add a line \"#SBATCH --gres=gpu:1\" (--device auto uses a GPU when it sees one).\n";
  s << "set -euo pipefail\n"
    << "exec " << shell_quote(slurm.executable.string()) << " extract";
  for (const auto& a : part_command_args(options)) s << " " << shell_quote(a);
  s << " --jobs \"${SLURM_CPUS_PER_TASK:-" << slurm.cpus_per_task << "}\" --part \"${SLURM_ARRAY_TASK_ID}/" << n
    << "\" --resume\n";
  return s.str();
}

}  // namespace songlines::extract
