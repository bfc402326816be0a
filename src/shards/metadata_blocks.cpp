#include "shards/metadata_blocks.h"

#include <cmath>
#include <stdexcept>

#include "core/error.h"

namespace songlines::shards {

bool is_metadata_block(const std::string& name) { return name.rfind(kMetadataPrefix, 0) == 0; }

std::vector<double> genre_one_hot(const std::string& genre) {
  std::vector<double> v(std::size(kSeedGenres), 0.0);
  for (size_t g = 0; g < std::size(kSeedGenres); ++g)
    if (genre == kSeedGenres[g]) v[g] = 1.0;
  return v;
}

std::vector<double> listeners_features(const std::string& text, const std::string& where) {
  if (text.empty() || text == "nan" || text == "NaN" || text == "NA") return {0.0, 0.0};
  double n = 0.0;
  size_t used = 0;
  try {
    n = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || !(n >= 0.0) || std::isinf(n))
    throw InputError(where, "listeners: expected a count >= 0, got \"" + text + "\"");
  return {std::log10(1.0 + n), 1.0};
}

}  // namespace songlines::shards
