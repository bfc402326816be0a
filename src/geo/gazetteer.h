// Countries with ISO 3166-1 codes, capital and centre coordinates (data/geo/countries.csv, derived from the
// restcountries project, MPL-2.0: data/geo/LICENSE-restcountries-MPL-2.0.txt). Used to name the country of a
// predicted point (nearest capital) and by the crawler to turn country names into coordinates.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "geo/great_circle.h"

namespace songlines::geo {

struct Country {
  std::string iso2;           ///< "FR"
  std::string iso3;           ///< "FRA"
  std::string name;           ///< common name, "France"
  std::string official_name;  ///< "French Republic"
  std::string capital;        ///< "" for the few territories without one
  LatLon capital_coords;      ///< degrees; equals centre when there is no capital
  LatLon centre;              ///< degrees, the country's geographic centre (restcountries latlng)
  std::string region;         ///< "Europe"
  std::string subregion;      ///< "Western Europe"
  bool has_capital = false;   ///< whether capital_coords came from a capital (else copied from centre)
};

class Gazetteer {
 public:
  explicit Gazetteer(std::vector<Country> countries);

  /// The project's table, loaded once: $SONGLINES_DATA_DIR/geo/countries.csv when that variable is set, else
  /// the source tree's data/geo/countries.csv (path fixed at build time). Throws InputError when unreadable.
  static const Gazetteer& builtin();
  /// Loads a CSV with the columns cca2, cca3, name, official_name, capital, capital_lat, capital_lon,
  /// center_lat, center_lon, region, subregion (any order, extra columns ignored). Throws InputError.
  static Gazetteer load(const std::filesystem::path& csv);
  /// Where builtin() reads from.
  static std::filesystem::path builtin_path();

  const std::vector<Country>& countries() const { return countries_; }
  size_t size() const { return countries_.size(); }

  /// Case-insensitive lookups; nullptr when not found.
  const Country* find_by_iso2(std::string_view code) const;
  const Country* find_by_iso3(std::string_view code) const;
  /// Matches the common or the official name, case-insensitively ("france", "French Republic").
  const Country* find_by_name(std::string_view name) const;

  /// The country whose capital (centre where it has none) is nearest to p by great-circle distance.
  const Country& nearest(LatLon p) const;
  /// Same, among the countries with the given ISO2 codes (unknown codes ignored). Throws Error when none of
  /// the codes is known.
  const Country& nearest(LatLon p, const std::vector<std::string>& iso2_subset) const;

 private:
  std::vector<Country> countries_;
};

}  // namespace songlines::geo
