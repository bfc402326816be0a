// songlines compare RUN_DIR... | SWEEP_DIR [--csv FILE] [--json FILE]
#include <iostream>
#include <set>

#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "runs/results.h"

namespace songlines::cli {
namespace {

namespace fs = std::filesystem;

cxxopts::Options compare_options() {
  cxxopts::Options o("songlines compare",
                     "Metrics of runs side by side (mean +- std over seeds, repeats and folds); differences from the "
                     "first run beyond run-to-run spread are marked (paired t-test over identical folds, else Welch)");
  o.custom_help("RUN_DIR... | SWEEP_DIR [options]");
  o.add_options()("dirs", "run directories, or one sweep directory (its groups)", cxxopts::value<std::vector<std::string>>())(
      "csv", "also write the comparison as CSV to FILE (- for stdout)", cxxopts::value<std::string>())(
      "json", "also write the comparison as JSON to FILE (- for stdout)", cxxopts::value<std::string>());
  return o;
}

int compare_main(const cxxopts::ParseResult& a) {
  if (!a.count("dirs")) throw UsageError("compare: give run directories or a sweep directory");
  std::vector<runs::RunRecord> runs;
  for (const auto& d : a["dirs"].as<std::vector<std::string>>()) {
    if (runs::is_sweep_dir(d)) {
      for (auto& g : runs::load_sweep_groups(d)) runs.push_back(std::move(g));
    } else {
      runs.push_back(runs::load_run(d));
    }
  }
  // Two runs with the same directory name (runs/a/x, runs/b/x) need distinguishable columns.
  for (size_t i = 0; i < runs.size(); ++i)
    for (size_t j = i + 1; j < runs.size(); ++j)
      if (runs[j].label == runs[i].label) runs[j].label += "#" + std::to_string(j);
  // Runs of different experiments or on different data can be set side by side, but never without a word: the
  // differences then say as much about the data as about the models.
  std::set<std::string> experiment_names, data;
  for (const auto& r : runs) {
    experiment_names.insert(r.config.value("experiment", std::string("?")));
    if (r.config.contains("data")) data.insert(r.config["data"].dump());
  }
  if (experiment_names.size() > 1) {
    std::string names;
    for (const auto& n : experiment_names) names += (names.empty() ? "" : ", ") + n;
    std::cerr << "compare: note: these runs belong to " << experiment_names.size() << " experiments (" << names
              << ")\n";
  }
  if (data.size() > 1)
    std::cerr << "compare: note: the runs read different data (their \"data\" sections differ); differences are "
                 "not only the models'\n";
  auto cmp = runs::compare_runs(std::move(runs));
  bool quiet = false;
  auto emit = [&](const char* key, const std::string& text) {
    if (!a.count(key)) return;
    const auto file = a[key].as<std::string>();
    if (file == "-") {
      std::cout << text;
      quiet = true;
    } else {
      write_file_atomic(file, text);
    }
  };
  emit("csv", cmp.to_csv());
  emit("json", cmp.to_json().dump(2) + "\n");
  if (!quiet) std::cout << cmp.to_text();
  return 0;
}

SONGLINES_REGISTER_COMMAND(Command{"compare", "metrics of runs or a sweep side by side, significant differences marked",
                                   compare_options, compare_main, {"dirs"},
                                   {"songlines compare runs/gom/RUN_A runs/gom/RUN_B",
                                    "songlines compare runs/sweeps/gom-heads --csv results.csv"}});

}  // namespace
}  // namespace songlines::cli
