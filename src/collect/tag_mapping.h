// The crawl's inputs: which Last.fm tags to crawl and the country each implies (tag_to_country.json, with
// the extended "countries" section of names and demonyms), and tag -> genre (genre_mapping.json).
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "geo/gazetteer.h"

namespace songlines::collect {

struct CrawlTag {
  std::string tag;      ///< as Last.fm spells it ("flamenco")
  std::string country;  ///< ISO2 the tag implies, "" for none ("world")
};

class TagMapping {
 public:
  /// Crawl order: "with_country" in file order, then "without_country", then (crawl_country_tags) the
  /// "countries" names/demonyms, each tag once. Country names resolve through the gazetteer's names, then
  /// through "countries" (name or demonym -> country name) and a few aliases (USA, Scotland, Cabo Verde, ...).
  /// An unknown country leaves the tag without one and adds a warning. InputError for a malformed file.
  static TagMapping load(const std::filesystem::path& file, const geo::Gazetteer& gazetteer,
                         bool crawl_country_tags);
  const std::vector<CrawlTag>& tags() const { return tags_; }
  /// Country names that resolved to nothing (regions like "Middle East"): those tags carry no country.
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  std::vector<CrawlTag> tags_;
  std::vector<std::string> warnings_;
};

/// Genre of a track from its tags. Rule (docs/collect.md): tags are taken in crawl order; the first tag that
/// the mapping lists exactly (case-insensitive) decides; a tag listed under several genres takes the genre
/// that comes first in the file. When no tag is listed exactly, the first tag containing a listed tag as a
/// whole word ("spanish pop" contains "pop"; the longest listed tag wins, then file order) decides; else
/// "Other", as in the seed data.
class GenreMapping {
 public:
  GenreMapping() = default;
  /// {"genre_mapping": {Genre: [tags]}}; InputError names the file and key when malformed.
  static GenreMapping load(const std::filesystem::path& file);
  std::string genre_for(const std::vector<std::string>& tags) const;
  static constexpr const char* kOther = "Other";

 private:
  std::vector<std::pair<std::string, std::string>> entries_;  // (lower-case tag, genre) in file order
};

/// ASCII lower case.
std::string lower(std::string s);

}  // namespace songlines::collect
