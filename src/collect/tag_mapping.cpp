#include "collect/tag_mapping.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <set>

#include "core/error.h"

namespace songlines::collect {
namespace {

nlohmann::ordered_json read_json(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw InputError(file.string(), "cannot open");
  auto j = nlohmann::ordered_json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw InputError(file.string(), "not a JSON object");
  return j;
}

bool contains_word(const std::string& text, const std::string& word) {
  for (size_t pos = text.find(word); pos != std::string::npos; pos = text.find(word, pos + 1)) {
    bool left = pos == 0 || !std::isalnum(static_cast<unsigned char>(text[pos - 1]));
    size_t end = pos + word.size();
    bool right = end == text.size() || !std::isalnum(static_cast<unsigned char>(text[end]));
    if (left && right) return true;
  }
  return false;
}

}  // namespace

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

TagMapping TagMapping::load(const std::filesystem::path& file, const geo::Gazetteer& gazetteer,
                            bool crawl_country_tags) {
  auto j = read_json(file);
  std::map<std::string, std::string> names;  // lower-case name or demonym -> country name
  if (j.contains("countries")) {
    if (!j["countries"].is_object()) throw InputError(file.string(), "\"countries\" must be an object");
    for (auto& [k, v] : j["countries"].items()) {
      if (!v.is_string()) throw InputError(file.string(), "countries." + k + ": expected a country name");
      names[lower(k)] = v.get<std::string>();
    }
  }
  // Spellings in the seed's files that the gazetteer names differently (the gazetteer's "Congo" is ambiguous:
  // the seed means the Republic of the Congo). Regions such as "Middle East" stay without a country.
  static const std::map<std::string, std::string> kAliases = {
      {"usa", "US"}, {"hawaii", "US"}, {"scotland", "GB"}, {"england", "GB"}, {"wales", "GB"}, {"uk", "GB"},
      {"sao tome and principe", "ST"}, {"cabo verde", "CV"}, {"tahiti", "PF"}, {"congo", "CG"}};
  TagMapping m;
  auto iso2_of = [&](const std::string& country, const std::string& where) -> std::string {
    const geo::Country* c = gazetteer.find_by_name(country);
    if (!c) {
      auto alias = kAliases.find(lower(country));
      if (alias != kAliases.end()) c = gazetteer.find_by_iso2(alias->second);
    }
    if (!c) {
      auto it = names.find(lower(country));
      if (it != names.end()) c = gazetteer.find_by_name(it->second);
    }
    if (!c && country.size() == 2) c = gazetteer.find_by_iso2(country);
    if (!c) {
      m.warnings_.push_back(file.string() + ": " + where + ": \"" + country +
                            "\" is not a country in the gazetteer; the tag gives no location");
      return "";
    }
    return c->iso2;
  };
  std::set<std::string> seen;
  auto add = [&](const std::string& tag, const std::string& iso2) {
    if (seen.insert(lower(tag)).second) m.tags_.push_back({tag, iso2});
  };
  if (j.contains("with_country")) {
    if (!j["with_country"].is_object()) throw InputError(file.string(), "\"with_country\" must be an object");
    for (auto& [tag, v] : j["with_country"].items()) {
      if (!v.is_string()) throw InputError(file.string(), "with_country." + tag + ": expected a country name");
      add(tag, iso2_of(v.get<std::string>(), "with_country." + tag));
    }
  }
  if (j.contains("without_country")) {
    if (!j["without_country"].is_array()) throw InputError(file.string(), "\"without_country\" must be an array");
    for (auto& v : j["without_country"]) {
      if (!v.is_string()) throw InputError(file.string(), "without_country: expected tag strings");
      add(v.get<std::string>(), "");
    }
  }
  if (crawl_country_tags && j.contains("countries"))
    for (auto& [k, v] : j["countries"].items()) add(k, iso2_of(v.get<std::string>(), "countries." + k));
  if (m.tags_.empty()) throw InputError(file.string(), "no tags (expected \"with_country\" / \"without_country\")");
  return m;
}

GenreMapping GenreMapping::load(const std::filesystem::path& file) {
  auto j = read_json(file);
  if (!j.contains("genre_mapping") || !j["genre_mapping"].is_object())
    throw InputError(file.string(), "expected {\"genre_mapping\": {Genre: [tags]}}");
  GenreMapping g;
  for (auto& [genre, list] : j["genre_mapping"].items()) {
    if (!list.is_array()) throw InputError(file.string(), "genre_mapping." + genre + ": expected an array of tags");
    for (auto& t : list) {
      if (!t.is_string()) throw InputError(file.string(), "genre_mapping." + genre + ": expected tag strings");
      g.entries_.emplace_back(lower(t.get<std::string>()), genre);
    }
  }
  return g;
}

std::string GenreMapping::genre_for(const std::vector<std::string>& tags) const {
  for (const auto& tag : tags) {
    std::string t = lower(tag);
    for (const auto& [listed, genre] : entries_)
      if (listed == t) return genre;  // first in file order: the documented tie rule
  }
  for (const auto& tag : tags) {
    std::string t = lower(tag);
    const std::pair<std::string, std::string>* best = nullptr;
    for (const auto& e : entries_)
      if (contains_word(t, e.first) && (!best || e.first.size() > best->first.size())) best = &e;
    if (best) return best->second;
  }
  return kOther;
}

}  // namespace songlines::collect
