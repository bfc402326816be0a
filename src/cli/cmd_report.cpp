// songlines report RUN_DIR|SWEEP_DIR [--output FILE]
#include <iostream>

#include "cli/command.h"
#include "core/error.h"
#include "runs/report.h"

namespace songlines::cli {
namespace {

cxxopts::Options report_options() {
  cxxopts::Options o("songlines report",
                     "One self-contained HTML report of a run (map, error CDF, per-country table, learning curves, "
                     "samples) or of a sweep (results table, trial reports); opens offline");
  o.custom_help("RUN_DIR|SWEEP_DIR [options]");
  o.add_options()("dir", "run or sweep directory", cxxopts::value<std::string>())(
      "output", "HTML file to write (default DIR/report.html)", cxxopts::value<std::string>());
  return o;
}

int report_main(const cxxopts::ParseResult& a) {
  if (!a.count("dir")) throw UsageError("report: missing RUN_DIR or SWEEP_DIR");
  auto out = runs::write_report(a["dir"].as<std::string>(),
                                       a.count("output") ? std::filesystem::path(a["output"].as<std::string>())
                                                         : std::filesystem::path());
  std::cout << "report: " << out.string() << "\n";
  return 0;
}

SONGLINES_REGISTER_COMMAND(Command{"report", "self-contained HTML report of a run or sweep directory", report_options,
                                   report_main, {"dir"},
                                   {"songlines report runs/quickstart/location",
                                    "songlines report runs/sweeps/gom-heads --output heads.html"}});

}  // namespace
}  // namespace songlines::cli
