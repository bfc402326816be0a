#include "core/csv.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace songlines {

std::vector<CsvRecord> parse_csv_records(std::string_view text, const std::string& source) {
  std::vector<CsvRecord> records;
  std::vector<std::string> record;
  std::string field;
  bool in_quotes = false, field_started = false;
  int64_t line = 1, record_line = 1;  // the line of the current character, and of the record's start
  size_t i = 0;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") i = 3;
  auto end_field = [&] {
    record.push_back(std::move(field));
    field.clear();
    field_started = false;
  };
  auto end_record = [&] {
    end_field();
    if (!(record.size() == 1 && record[0].empty())) records.push_back({std::move(record), record_line});  // blank line
    record.clear();
  };
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          in_quotes = false;
        }
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    if (c == '"' && !field_started) {
      in_quotes = field_started = true;
    } else if (c == ',') {
      end_field();
    } else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      continue;
    } else if (c == '\n') {
      end_record();
      record_line = ++line;
    } else {
      field += c;
      field_started = true;
    }
  }
  if (in_quotes) throw InputError(source, "unterminated quoted field starting on line " + std::to_string(record_line));
  if (field_started || !record.empty()) end_record();
  return records;
}

namespace {
std::string read_whole_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(file.string(), "cannot open CSV file");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

std::vector<CsvRecord> read_csv_records(const std::filesystem::path& file) {
  return parse_csv_records(read_whole_file(file), file.string());
}

int CsvTable::column(const std::string& name) const {
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return static_cast<int>(i);
  return -1;
}

int CsvTable::column_ignore_case(const std::string& name) const {
  auto lower = [](std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  const std::string want = lower(name);
  for (size_t i = 0; i < header.size(); ++i)
    if (lower(header[i]) == want) return static_cast<int>(i);
  return -1;
}

CsvTable parse_csv(const std::string& text, const std::string& source) {
  auto records = parse_csv_records(text, source);
  if (records.empty()) throw InputError(source, "empty CSV (no header line)");
  CsvTable t;
  t.header = std::move(records[0].fields);
  for (size_t r = 1; r < records.size(); ++r) {
    if (records[r].fields.size() != t.header.size())
      throw InputError(source, "line " + std::to_string(records[r].line) + " has " +
                                   std::to_string(records[r].fields.size()) + " fields, the header has " +
                                   std::to_string(t.header.size()));
    t.rows.push_back(std::move(records[r].fields));
  }
  return t;
}

CsvTable read_csv(const std::string& path) { return parse_csv(read_whole_file(path), path); }

std::string csv_field(const std::string& value) {
  if (value.find_first_of(",\"\r\n") == std::string::npos) return value;
  std::string out = "\"";
  for (char c : value) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string csv_line(const std::vector<std::string>& fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) out += ',';
    out += csv_field(fields[i]);
  }
  return out + "\n";
}

std::string format_double(double v) {
  if (std::isnan(v)) return "nan";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

}  // namespace songlines
