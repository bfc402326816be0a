// Metadata summary blocks: Last.fm facts about a track (not its audio) stored beside the audio summaries so a
// location model can use them. Their names start with "meta_"; a run's default feature list leaves them out, a
// config's data.features names them to use them (experiments/seed-tracks-metadata.json).
//  - meta_genre [11]: one-hot over kSeedGenres (the seed pipeline's genre_mapping.json genres, in its order); a
//    genre outside the list, or none, is all zeros.
//  - meta_listeners [2]: (log10(1 + listeners), 1), or (0, 0) when the count is unknown.
// Written by `import-table --format seed-csv` (genre / listeners columns) and by `extract --catalog` (the
// catalog's genre / listeners columns; every track of such a run gets both blocks).
#pragma once

#include <iterator>
#include <string>
#include <vector>

namespace songlines::shards {

inline constexpr const char* kMetadataPrefix = "meta_";
inline constexpr const char* kMetaGenre = "meta_genre";
inline constexpr const char* kMetaListeners = "meta_listeners";

/// The genres of the seed pipeline's genre_mapping.json, in its order (the column order of meta_genre).
inline constexpr const char* kSeedGenres[] = {"Pop",    "Traditional", "Classical", "Metal", "Jazz/Blues", "Country",
                                              "Reggae", "Latin",       "Punk",      "Electronic", "Other"};

/// Whether a summary block holds metadata (its name starts with "meta_").
bool is_metadata_block(const std::string& name);

/// meta_genre of a genre name (exact match).
std::vector<double> genre_one_hot(const std::string& genre);

/// meta_listeners of a listeners field ("" / "nan" / "NA" = unknown). Throws InputError(where, ...) naming the
/// value when it is not a count >= 0.
std::vector<double> listeners_features(const std::string& text, const std::string& where);

}  // namespace songlines::shards
