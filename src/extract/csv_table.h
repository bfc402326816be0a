// RFC 4180 CSV for extract's catalog input and features.csv output: quoted fields may hold commas, quotes ("")
// and newlines. Small and strict: a row with the wrong number of fields is an InputError naming file and line.
#pragma once

#include <string>
#include <vector>

namespace songlines::extract {

struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  ///< each has header.size() fields
  /// Column index by exact name, or -1.
  int column(const std::string& name) const;
  /// Column index by name ignoring ASCII case, or -1.
  int column_ignore_case(const std::string& name) const;
};

/// Parses a whole CSV file (first line = header; a UTF-8 BOM is skipped). Throws InputError.
CsvTable read_csv(const std::string& path);
/// Parses CSV text; `source` names it in errors.
CsvTable parse_csv(const std::string& text, const std::string& source);

/// One field, quoted when it holds a comma, quote, CR or LF.
std::string csv_field(const std::string& value);
/// A line of fields joined by commas, ending in "\n".
std::string csv_line(const std::vector<std::string>& fields);
/// Shortest decimal that parses back to exactly v (std::to_chars); "nan" for NaN.
std::string format_double(double v);

}  // namespace songlines::extract
