// songlines import-table --format gom|seed-csv --input FILE --output DIR
#include <iostream>

#include "cli/command.h"
#include "core/error.h"
#include "train/table_import.h"

namespace songlines::cli {
namespace {

cxxopts::Options import_options() {
  cxxopts::Options o("songlines import-table",
                     "Precomputed feature tables (GOM, the seed CSV) to summary-only shards. Rows without "
                     "coordinates or at (0, 0) are reported and left out.");
  o.add_options()("format", "gom or seed-csv", cxxopts::value<std::string>())(
      "input", "the table file", cxxopts::value<std::string>())(
      "output", "directory for the shard (<input stem>.h5)", cxxopts::value<std::string>());
  return o;
}

int import_main(const cxxopts::ParseResult& args) {
  for (const char* k : {"format", "input", "output"})
    if (!args.count(k)) throw UsageError(std::string("import-table: missing --") + k);
  auto format = train::parse_table_format(args["format"].as<std::string>());
  std::filesystem::path input = args["input"].as<std::string>();
  auto table = train::read_feature_table(input, format);
  for (const auto& s : table.skipped) std::cerr << "skipped " << s << "\n";
  auto path = train::write_table_shard(table, args["output"].as<std::string>(), input.stem().string());
  std::cout << "imported " << table.tracks.size() << " of " << table.rows << " rows (" << table.skipped.size()
            << " skipped) -> " << path.string() << "\n";
  return 0;
}

SONGLINES_REGISTER_COMMAND(Command{"import-table", "precomputed feature tables (GOM, seed CSV) to shards",
                                   import_options, import_main, {},
                                   {"songlines import-table --format gom --input data/gom/default_features_1059_tracks.txt --output gom-shards/"}});

}  // namespace
}  // namespace songlines::cli
