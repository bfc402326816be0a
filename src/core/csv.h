// RFC 4180 CSV, the one reader and writer of the project (extract's catalog and features.csv, the table import,
// the gazetteer, run and sweep outputs). Reading: a field that starts with a double quote may hold commas,
// doubled quotes ("") and line breaks; a quote later in an unquoted field is an ordinary character; CRLF and LF
// both end a record; blank lines are no record; a UTF-8 byte-order mark at the start is skipped. Writing quotes
// exactly the fields that need it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace songlines {

/// One record and the 1-based line of the file where it starts (quoted line breaks and blank lines counted),
/// for messages that a user can find in an editor.
struct CsvRecord {
  std::vector<std::string> fields;
  int64_t line = 0;
};

/// Every record of CSV text; `source` names it in errors (InputError on an unterminated quoted field).
std::vector<CsvRecord> parse_csv_records(std::string_view text, const std::string& source);
/// Every record of a CSV file (InputError when it cannot be read).
std::vector<CsvRecord> read_csv_records(const std::filesystem::path& file);

/// A CSV file with a header line: every row has the header's number of fields.
struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  ///< each has header.size() fields
  /// Column index by exact name, or -1.
  int column(const std::string& name) const;
  /// Column index by name ignoring ASCII case, or -1.
  int column_ignore_case(const std::string& name) const;
};

/// Parses CSV text with a header; a row with another number of fields is an InputError naming its line.
CsvTable parse_csv(const std::string& text, const std::string& source);
/// Parses a whole CSV file with a header (parse_csv).
CsvTable read_csv(const std::string& path);

/// One field, quoted when it holds a comma, quote, CR or LF.
std::string csv_field(const std::string& value);
/// A line of fields joined by commas, ending in "\n".
std::string csv_line(const std::vector<std::string>& fields);
/// Shortest decimal that parses back to exactly v (std::to_chars); "nan" for NaN.
std::string format_double(double v);

/// The seed pipeline's feature blocks (its all_data.csv and extract's features.csv), in its column order: the
/// shard summary feature, the CSV column prefix (columns prefix1..prefixN) and the width N.
struct SeedCsvBlock {
  const char* feature;
  const char* prefix;
  int dim;
};
inline constexpr SeedCsvBlock kSeedCsvBlocks[] = {
    {"mfcc", "MFCC", 20}, {"chroma_stft", "Chroma", 12}, {"spectral_contrast", "Spectral Contrast", 7}, {"tonnetz", "Tonnetz", 6}};

}  // namespace songlines
