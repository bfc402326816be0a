// The main job (experiments/quickstart.json) run as a user runs it: the README's command from the repository
// root, and `songlines run` from another working directory (docs/experiments.md, "Paths"). Label `slow`.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/config.h"
#include "runs/quickstart.h"
#include "experiments/report_render.h"
#include "support/test_support.h"

namespace songlines::runs {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// --set overrides that shrink the shipped quickstart to a tiny run (epochs of every neural location model to 1).
std::string tiny_quickstart_sets(const QuickstartConfig& full) {
  std::string sets = " --set audio.places=3 --set audio.tracks_per_place=4 --set audio.seconds=2"
                     " --set location.evaluation.folds=2 --set audio_location.evaluation.folds=2"
                     " --set vae.train.steps=4 --set vae.train.log_every=2 --set vae.samples.seconds=1"
                     " --set vae.evaluation.geo_consistency.seconds=1 --set vae.evaluation.geo_consistency.seeds=2"
                     " --set vae.evaluation.audio_seconds=1 --set vae.model.segment_frames=16 --device cpu"
                     " --set 'vae.model.channels=[8,16,32]'"  // a value with commas stays one override
                     " --set vocoder.train.steps=4 --set vocoder.train.log_every=2 --set vocoder.checkpoint_every=2"
                     " --set vocoder.evaluation.seconds=1 --set vocoder.evaluation.griffin_lim_iterations=4";
  for (const char* part : {"location", "audio_location"}) {
    const auto& models = full.*(std::string(part) == "location" ? &QuickstartConfig::location : &QuickstartConfig::audio_location);
    for (size_t i = 0; i < models["models"].size(); ++i) {
      const std::string type = models["models"][i]["type"];
      if (type == "mlp" || type == "temporal") sets += std::string(" --set ") + part + ".models." + std::to_string(i) + ".train.epochs=1";
    }
  }
  return sets;
}

// A folder under the source tree's runs/ (git-ignored), removed at scope exit.
struct SourceRunsDir {
  explicit SourceRunsDir(const std::string& name)
      : relative(fs::path("runs") / (name + "-" + std::to_string(::getpid()))), absolute(testing::source_dir() / relative) {
    fs::remove_all(absolute);
  }
  ~SourceRunsDir() {
    std::error_code ec;
    fs::remove_all(absolute, ec);
  }
  fs::path relative, absolute;
};

// The README's main command as written (`bash scripts/quickstart.sh`, from the repository root, with the
// script's relative config path and a relative --run-dir as the README's default), at tiny size: every part
// runs, the report links them and renders in Chromium. The script's setup and build steps find everything in
// place (SONGLINES_BUILD_DIR is this test's build folder).
TEST(QuickstartConfig, TheReadmeCommandRunsFromTheRepositoryRootAtTinySize) {
  const fs::path config = testing::source_dir() / "experiments" / "quickstart.json";
  const std::string sets = tiny_quickstart_sets(load_quickstart_config(config, {}));
  const SourceRunsDir q("ctest-quickstart");
  const std::string readme = "cd '" + testing::source_dir().string() + "' && SONGLINES_NO_PROGRESS=1 SONGLINES_BUILD_DIR='" +
                             testing::binary_path().parent_path().string() + "' bash scripts/quickstart.sh --run-dir " +
                             q.relative.string() + sets;
  auto r = testing::run_command(readme);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path out = q.absolute;
  EXPECT_EQ(load_json_file((out / "vae" / "config.json").string())["model"]["channels"], Json::parse("[8,16,32]"));
  for (const char* part : {"location", "audio-location", "vocoder", "vae"}) {
    EXPECT_TRUE(fs::exists(out / part / "metrics.json")) << part;
    EXPECT_TRUE(fs::exists(out / part / "report.html")) << part;
  }
  // The vocoder stage: trained on the synthesized audio for the features' mel, and the VAE's samples and
  // evaluation come from it (its checkpoint names it, so `generate --model vae` uses it too).
  const fs::path vocoder = out / "vocoder";
  const Json voc_config = load_json_file((vocoder / "config.json").string());
  EXPECT_EQ(fs::path(voc_config["data"]["audio"][0].get<std::string>()), out / "audio");
  EXPECT_EQ(voc_config["train"]["steps"].get<int>(), 4);
  EXPECT_EQ(fs::path(load_json_file((out / "vae" / "config.json").string())["vocoder"].get<std::string>()), vocoder);
  const Json vae_metrics = load_json_file((out / "vae" / "metrics.json").string());
  EXPECT_EQ(fs::path(vae_metrics["audio_path"].get<std::string>()), vocoder) << vae_metrics.dump(2);
  const Json& held_out = vae_metrics["held_out_audio"];
  EXPECT_EQ(held_out["audio_path"], "vocoder") << held_out.dump(2);
  for (const char* k : {"vocoder_true_mel_mr_stft", "griffin_lim_true_mel_mr_stft", "vae_mr_stft"})
    EXPECT_GT(held_out.value(k, 0.0), 0.0) << k << ": " << held_out.dump(2);
  EXPECT_NE(held_out["vocoder_true_mel_mr_stft"], held_out["griffin_lim_true_mel_mr_stft"]) << "two audio paths, two figures";
  // Its own report (four figures, clips side by side) is kept, not replaced by the generic one.
  EXPECT_NE(read_text(vocoder / "report.html").find("Griffin-Lim"), std::string::npos);
  // 3 places x 4 tracks were synthesized and extracted with their places.
  int wavs = 0;
  for (const auto& f : fs::directory_iterator(out / "audio")) wavs += f.path().extension() == ".wav";
  EXPECT_EQ(wavs, 12);
  const Json summary = load_json_file((out / "summary.json").string());
  EXPECT_EQ(summary["audio"]["tracks"].get<int>(), 12);
  EXPECT_EQ(summary["audio_location"]["tracks"].get<int>(), 12) << summary.dump(2);
  EXPECT_EQ(summary["location"]["tracks"].get<int>(), 1059) << summary.dump(2);
  EXPECT_TRUE(summary["vae"].contains("geo_generated_km")) << summary.dump(2);
  EXPECT_GT(summary["vocoder"].value("vocoder_true_mel_mr_stft", 0.0), 0.0) << summary.dump(2);
  EXPECT_GT(summary["vocoder"].value("griffin_lim_true_mel_mr_stft", 0.0), 0.0) << summary.dump(2);
  // The features folder one part handed to the others is absolute.
  EXPECT_TRUE(fs::path(summary["audio"]["features_dir"].get<std::string>()).is_absolute()) << summary.dump(2);
  // Samples: one per training place plus the unseen places, each with a spectrogram.
  int samples = 0;
  for (const auto& f : fs::directory_iterator(out / "vae" / "samples"))
    if (f.path().extension() == ".wav") {
      ++samples;
      auto png = f.path();
      EXPECT_TRUE(fs::exists(png.replace_extension(".png"))) << f.path();
    }
  EXPECT_GE(samples, 3);
  // The command prints where the report and the samples are, as absolute paths.
  EXPECT_NE(r.output.find("report:  " + (out / "report.html").string()), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("samples: " + (out / "vae" / "samples").string()), std::string::npos) << r.output;
  const std::string html = read_text(out / "report.html");
  for (const char* link : {"location/report.html", "audio-location/report.html", "vocoder/report.html", "vae/report.html", "<audio"})
    EXPECT_NE(html.find(link), std::string::npos) << link;

  // A rerun with the same config skips the finished parts; another config in the same folder is refused.
  const std::string direct = "cd '" + testing::source_dir().string() + "' && SONGLINES_NO_PROGRESS=1 '" +
                             testing::binary_path().string() + "' run experiments/quickstart.json --run-dir " +
                             q.relative.string() + sets;
  auto again = testing::run_command(direct);
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("is complete, skipped"), std::string::npos) << again.output;
  auto other = testing::run_command(direct + " --set seed=9");
  EXPECT_NE(other.exit_code, 0);
  EXPECT_NE(other.output.find("different config"), std::string::npos) << other.output;

  if (!have_chromium()) GTEST_SKIP() << "chromium is not installed (scripts/setup.sh installs it)";
  TempDir png;
  expect_clean_render(out / "report.html", png / "q.png", false);
}

// `songlines run` on the quickstart config from another working directory, with a relative config path and the
// default run directory (runs/<experiment> under the working directory): the synthesized features reach the
// audio-location part (the part that once looked for them beside the config file).
TEST(QuickstartConfig, RunsFromAnotherWorkingDirectoryWithTheDefaultRunDirectory) {
  const fs::path config = testing::source_dir() / "experiments" / "quickstart.json";
  TempDir wd;
  const bool beside_before = fs::exists(config.parent_path() / "runs");
  const fs::path relative_config = fs::relative(config, wd.path());
  ASSERT_TRUE(relative_config.is_relative());
  auto r = testing::run_command("cd '" + wd.path().string() + "' && SONGLINES_NO_PROGRESS=1 '" +
                                testing::binary_path().string() + "' run '" + relative_config.string() + "'" +
                                tiny_quickstart_sets(load_quickstart_config(config, {})) +
                                " --set 'location={}' --set 'vocoder={}' --set 'vae={}'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(wd / "runs/quickstart/audio-location/metrics.json")) << r.output;
  EXPECT_TRUE(fs::exists(wd / "runs/quickstart/report.html"));
  if (!beside_before)
    EXPECT_FALSE(fs::exists(config.parent_path() / "runs")) << "nothing may be written beside the config";
}

}  // namespace
}  // namespace songlines::runs
