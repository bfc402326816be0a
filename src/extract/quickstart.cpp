#include "extract/quickstart.h"

#include "audio/audio_file.h"
#include "core/error.h"
#include "extract/extract_journal.h"

namespace songlines::extract {

namespace fs = std::filesystem;

QuickstartResult run_quickstart(const QuickstartOptions& options) {
  if (options.n_tracks < 1) throw UsageError("quickstart: --tracks must be >= 1");
  if (options.seconds <= 0) throw UsageError("quickstart: --seconds must be > 0");
  QuickstartResult r;
  r.audio_dir = options.output_dir / "audio";
  r.features_dir = options.output_dir / "features";
  fs::create_directories(r.audio_dir);

  r.tracks = default_synthetic_tracks(options.n_tracks, options.seconds, options.seed);
  for (const auto& t : r.tracks) {
    std::vector<float> y = synthesize_music(t.options);
    audio::write_audio((r.audio_dir / (t.name + ".wav")).string(), y.data(), static_cast<int64_t>(y.size()),
                       t.options.sample_rate, 1, audio::SampleEncoding::kPcm16);
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
  r.extract = run_extract(eo);
  return r;
}

}  // namespace songlines::extract
