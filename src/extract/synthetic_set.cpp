#include "extract/synthetic_set.h"

#include "audio/audio_file.h"
#include <sstream>

#include "core/atomic_file.h"
#include "core/csv.h"
#include "core/error.h"
#include "extract/extract_journal.h"

namespace songlines::extract {

namespace fs = std::filesystem;

SyntheticSet synthesize_and_extract(const SyntheticSetOptions& options) {
  if (options.places == 0 && options.n_tracks < 1) throw UsageError("synthetic set: --tracks must be >= 1");
  if (options.seconds <= 0) throw UsageError("synthetic set: --seconds must be > 0");
  SyntheticSet r;
  r.audio_dir = options.output_dir / "audio";
  r.features_dir = options.output_dir / "features";
  fs::create_directories(r.audio_dir);

  if (options.places > 0) {
    for (auto& t : placed_synthetic_tracks(options.places, options.tracks_per_place, options.seconds, options.seed)) {
      r.tracks.push_back(std::move(t.track));
      r.track_places.push_back(std::move(t.place));
    }
  } else {
    r.tracks = default_synthetic_tracks(options.n_tracks, options.seconds, options.seed);
  }
  // Files of an earlier set with other settings would otherwise be extracted too.
  for (const auto& e : fs::directory_iterator(r.audio_dir))
    if (e.path().extension() == ".wav") fs::remove(e.path());
  for (const auto& t : r.tracks) {
    std::vector<float> y = synthesize_music(t.options);
    audio::write_audio((r.audio_dir / (t.name + ".wav")).string(), y.data(), static_cast<int64_t>(y.size()),
                       t.options.sample_rate, 1, audio::SampleEncoding::kPcm16);
  }

  fs::path catalog;
  if (!r.track_places.empty()) {
    catalog = options.output_dir / "catalog.csv";
    std::ostringstream csv;
    csv << "track_id,location,country,latitude,longitude\n";
    for (size_t i = 0; i < r.tracks.size(); ++i) {
      const auto& p = r.track_places[i];
      csv << csv_field(r.tracks[i].name) << "," << csv_field(p.name) << "," << p.iso2 << "," << p.where.lat << "," << p.where.lon << "\n";
    }
    write_file_atomic(catalog, csv.str());
  }

  // A rerun replaces its own earlier extraction; it never deletes a folder it did not make.
  std::error_code ec;
  if (fs::exists(r.features_dir / kJournalName, ec)) fs::remove_all(r.features_dir);

  ExtractOptions eo;
  eo.inputs = {r.audio_dir};
  eo.output_dir = r.features_dir;
  eo.jobs = options.jobs;
  eo.device = options.device;
  eo.progress = options.progress;
  eo.shard_size = 256;
  eo.catalog = catalog;
  if (!options.features.empty()) eo.feature_options.features = options.features;
  r.extract = run_extract(eo);
  return r;
}

}  // namespace songlines::extract
