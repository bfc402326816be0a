#include "geo/gazetteer.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <limits>
#include <map>

#include "core/csv.h"
#include "core/error.h"

#ifndef SONGLINES_DATA_DIR
#error "SONGLINES_DATA_DIR must be defined by the build (src/CMakeLists.txt)"
#endif

namespace songlines::geo {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

double parse_coordinate(const std::string& text, const std::string& where) {
  if (text.empty()) return std::numeric_limits<double>::quiet_NaN();
  try {
    size_t used = 0;
    double v = std::stod(text, &used);
    if (used != text.size()) throw std::invalid_argument(text);
    return v;
  } catch (const std::exception&) {
    throw InputError(where, "not a number: \"" + text + "\"");
  }
}

}  // namespace

Gazetteer::Gazetteer(std::vector<Country> countries) : countries_(std::move(countries)) {}

std::filesystem::path Gazetteer::builtin_path() {
  if (const char* dir = std::getenv("SONGLINES_DATA_DIR"); dir && *dir)
    return std::filesystem::path(dir) / "geo" / "countries.csv";
  return std::filesystem::path(SONGLINES_DATA_DIR) / "geo" / "countries.csv";
}

const Gazetteer& Gazetteer::builtin() {
  static const Gazetteer instance = load(builtin_path());
  return instance;
}

Gazetteer Gazetteer::load(const std::filesystem::path& csv) {
  if (!std::filesystem::exists(csv)) throw InputError(csv.string(), "cannot open the country table");
  const auto records = read_csv_records(csv);
  if (records.empty()) throw InputError(csv.string(), "empty file");
  std::map<std::string, size_t> column;
  const auto& header = records[0].fields;
  for (size_t i = 0; i < header.size(); ++i) column[header[i]] = i;
  const char* required[] = {"cca2", "cca3", "name", "capital", "capital_lat", "capital_lon", "center_lat",
                            "center_lon"};
  for (const char* r : required)
    if (!column.count(r)) throw InputError(csv.string(), std::string("missing column \"") + r + "\"");
  std::vector<Country> out;
  for (size_t r = 1; r < records.size(); ++r) {
    const auto& f = records[r].fields;
    const int64_t line_no = records[r].line;
    if (f.size() != header.size())
      throw InputError(csv.string() + ":" + std::to_string(line_no),
                       "expected " + std::to_string(header.size()) + " fields, got " + std::to_string(f.size()));
    auto get = [&](const char* name) -> std::string {
      auto it = column.find(name);
      return it == column.end() ? std::string() : f[it->second];
    };
    std::string where = csv.string() + ":" + std::to_string(line_no);
    Country c;
    c.iso2 = get("cca2");
    c.iso3 = get("cca3");
    c.name = get("name");
    c.official_name = get("official_name");
    c.capital = get("capital");
    c.region = get("region");
    c.subregion = get("subregion");
    c.centre = {parse_coordinate(get("center_lat"), where), parse_coordinate(get("center_lon"), where)};
    LatLon cap{parse_coordinate(get("capital_lat"), where), parse_coordinate(get("capital_lon"), where)};
    c.has_capital = is_valid(cap);
    c.capital_coords = c.has_capital ? cap : c.centre;
    if (!is_valid(c.capital_coords)) throw InputError(where, "no valid capital or centre coordinates");
    out.push_back(std::move(c));
  }
  if (out.empty()) throw InputError(csv.string(), "no countries");
  return Gazetteer(std::move(out));
}

const Country* Gazetteer::find_by_iso2(std::string_view code) const {
  std::string key = lower(code);
  for (const auto& c : countries_)
    if (lower(c.iso2) == key) return &c;
  return nullptr;
}

const Country* Gazetteer::find_by_iso3(std::string_view code) const {
  std::string key = lower(code);
  for (const auto& c : countries_)
    if (lower(c.iso3) == key) return &c;
  return nullptr;
}

const Country* Gazetteer::find_by_name(std::string_view name) const {
  std::string key = lower(name);
  for (const auto& c : countries_)
    if (lower(c.name) == key || lower(c.official_name) == key) return &c;
  return nullptr;
}

const Country& Gazetteer::nearest(LatLon p) const {
  const Country* best = nullptr;
  double best_km = std::numeric_limits<double>::infinity();
  for (const auto& c : countries_) {
    double d = distance_km(p, c.capital_coords);
    if (d < best_km) best_km = d, best = &c;
  }
  return *best;  // countries_ is never empty (load() rejects an empty table)
}

const Country& Gazetteer::nearest(LatLon p, const std::vector<std::string>& iso2_subset) const {
  const Country* best = nullptr;
  double best_km = std::numeric_limits<double>::infinity();
  for (const auto& code : iso2_subset) {
    const Country* c = find_by_iso2(code);
    if (!c) continue;
    double d = distance_km(p, c->capital_coords);
    if (d < best_km) best_km = d, best = c;
  }
  if (!best) throw Error("gazetteer: none of the " + std::to_string(iso2_subset.size()) + " country codes is known");
  return *best;
}

}  // namespace songlines::geo
