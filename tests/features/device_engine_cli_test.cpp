// `songlines features --device host` through the binary: the device engine's host backend writes the shard the
// reference would (within float32 tolerance; chroma_stft at the estimated tuning included), and features it does
// not support are refused with exit status 2 before any audio is read. extract: tests/extract/extract_device_test.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <span>
#include <random>
#include <string>
#include <vector>

#include "audio/audio_file.h"
#include "features/device_engine.h"
#include "features/feature_extractor.h"
#include "shards/shard.h"
#include "support/test_support.h"

namespace songlines::features {
namespace {

using songlines::testing::MaxAbsNear;
using songlines::testing::RelativeL2Near;
using songlines::testing::run_songlines;
using songlines::testing::TempDir;

constexpr double kRelL2 = 1e-4;

std::string write_test_wav(const TempDir& dir) {
  std::mt19937 rng(42);
  std::normal_distribution<double> noise(0.0, 0.05);
  std::vector<float> y(3 * 22050 + 123);
  for (size_t i = 0; i < y.size(); ++i)
    y[i] = static_cast<float>(0.3 * std::sin(2.0 * M_PI * 330.0 * i / 22050.0) * std::exp(-double(i) / 30000.0) +
                              noise(rng));
  const std::string path = (dir / "tone.wav").string();
  audio::write_audio(path, y.data(), static_cast<int64_t>(y.size()), 22050, 1, audio::SampleEncoding::kFloat32);
  return path;
}

/// The reference engine's features of the audio file the command reads (decoded the same way).
TrackFeatures reference_features(const std::string& path, const FeatureOptions& o) {
  audio::LoadOptions lo;
  const audio::MonoAudio audio = audio::load_audio(path, lo);
  return FeatureExtractor(o).compute(audio.samples.data(), static_cast<int64_t>(audio.samples.size()));
}

TEST(FeaturesCommandHost, WritesTheReferencesFeatures) {
  const TempDir dir;
  const std::string wav = write_test_wav(dir);
  const std::string out = (dir / "tone.h5").string();
  const auto r = run_songlines("features --device host --features mfcc,mel_db,stft_mag,melspectrogram,spectral_contrast --input " + wav +
                               " --output " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("(host)"), std::string::npos) << r.output;

  FeatureOptions o;
  o.features = {"mfcc", "mel_db", "stft_mag", "melspectrogram", "spectral_contrast"};
  const TrackFeatures expected = reference_features(wav, o);
  const shards::ShardReader shard(out);
  ASSERT_EQ(shard.size(), 1);
  for (const std::string& name : o.features) {
    ASSERT_TRUE(shard.has_frames(name)) << name;
    const FeatureMatrix a = shard.read_frames(name, 0);
    const FeatureMatrix& e = expected.frames.at(name);
    ASSERT_EQ(a.frames, e.frames) << name;
    const std::vector<double> x(a.data.begin(), a.data.end()), y(e.data.begin(), e.data.end());
    if (name == "spectral_contrast") {
      EXPECT_TRUE(MaxAbsNear(x, y, 1e-3, name, e.dim));  // dB
    } else {
      EXPECT_TRUE(RelativeL2Near(x, y, kRelL2, name, e.dim));
    }
  }
  EXPECT_FALSE(shard.has_frames("chroma_stft"));
}

TEST(FeaturesCommandHost, ChromaStftAtTheEstimatedTuningMatchesTheReference) {
  // librosa's default chroma_stft (tuning estimated from the track), which the command cannot set otherwise.
  const TempDir dir;
  const std::string wav = write_test_wav(dir);
  const std::string out = (dir / "chroma.h5").string();
  const auto r = run_songlines("features --device host --features mfcc,chroma_stft --input " + wav + " --output " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  FeatureOptions o;
  o.features = {"mfcc", "chroma_stft"};
  const TrackFeatures expected = reference_features(wav, o);
  const shards::ShardReader shard(out);
  ASSERT_EQ(shard.size(), 1);
  const FeatureMatrix a = shard.read_frames("chroma_stft", 0);
  const FeatureMatrix& e = expected.frames.at("chroma_stft");
  ASSERT_EQ(a.frames, e.frames);
  EXPECT_TRUE(MaxAbsNear(std::vector<double>(a.data.begin(), a.data.end()),
                         std::vector<double>(e.data.begin(), e.data.end()), 1e-3, "chroma_stft", e.dim));
}

TEST(FeaturesCommandHost, CqtFamilyMatchesTheReference) {
  // cqt_mag, chroma_cqt and tonnetz at the CQT tuning estimated from the track, beside mfcc (another frame grid
  // length is possible: the shard trims to the shortest, so compare that many frames).
  const TempDir dir;
  const std::string wav = write_test_wav(dir);
  const std::string out = (dir / "cqt.h5").string();
  const auto r =
      run_songlines("features --device host --features cqt_mag,chroma_cqt,tonnetz,mfcc --input " + wav + " --output " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  FeatureOptions o;
  o.features = {"cqt_mag", "chroma_cqt", "tonnetz", "mfcc"};
  const TrackFeatures expected = reference_features(wav, o);
  const shards::ShardReader shard(out);
  ASSERT_EQ(shard.size(), 1);
  for (const std::string& name : o.features) {
    ASSERT_TRUE(shard.has_frames(name)) << name;
    const FeatureMatrix a = shard.read_frames(name, 0);
    const FeatureMatrix& e = expected.frames.at(name);
    ASSERT_GE(a.frames, e.frames - 1) << name;
    ASSERT_LE(a.frames, e.frames) << name;
    const std::vector<double> got(a.data.begin(), a.data.end());
    const std::vector<double> want(e.data.begin(), e.data.begin() + a.frames * e.dim);
    if (name == "chroma_cqt" || name == "tonnetz")
      EXPECT_TRUE(MaxAbsNear(got, want, 1e-3, name, e.dim));
    else
      EXPECT_TRUE(RelativeL2Near(got, want, kRelL2, name, e.dim));
  }
}

TEST(FeaturesCommandHost, FeaturesOptionSelectsTheFeaturesOnTheReferenceToo) {
  const TempDir dir;
  const std::string wav = write_test_wav(dir);
  const std::string out = (dir / "cpu.h5").string();
  const auto r = run_songlines("features --device cpu --features chroma_stft,mfcc --input " + wav + " --output " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const shards::ShardReader shard(out);
  EXPECT_EQ(shard.frame_feature_names(), (std::vector<std::string>{"chroma_stft", "mfcc"}));
}

TEST(FeaturesCommandHost, UnsupportedFeaturesAreRefusedBeforeReadingAudio) {
  // The input does not exist: exit 2 with the feature named proves the check ran before any audio was read.
  const TempDir dir;
  const std::string missing = (dir / "missing.wav").string(), out = (dir / "o.h5").string();
  FeatureOptions all;
  if (const auto unsupported = DeviceFeatureEngine::first_unsupported_feature(all)) {
    auto r = run_songlines("features --device host --input " + missing + " --output " + out);  // default: all
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("\"" + *unsupported + "\""), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("--features"), std::string::npos) << r.output;
    r = run_songlines("features --device host --features mfcc," + *unsupported + " --input " + missing + " --output " + out);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("\"" + *unsupported + "\""), std::string::npos) << r.output;
  }
  auto r = run_songlines("features --device host --features mfcc,mfcc --input " + missing + " --output " + out);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = run_songlines("features --device host --features mfc --input " + missing + " --output " + out);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("mfc"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(out));
}

/// The frames of the one-track shard at `path`, by feature.
std::map<std::string, FeatureMatrix> shard_frames(const std::string& path) {
  const shards::ShardReader shard(path);
  EXPECT_EQ(shard.size(), 1);
  std::map<std::string, FeatureMatrix> m;
  for (const std::string& name : shard.frame_feature_names()) m[name] = shard.read_frames(name, 0);
  return m;
}

TEST(FeaturesCommandHost, OneTrackGoesThroughExtractsBatcherAtAnyBudget) {
  // `features` runs extract's device producer (decode thread -> batcher -> engine thread): its shard holds exactly
  // the engine's compute_batch of the decoded track (trimmed to the shortest grid), and a budget that cuts the
  // track into chunks of 37 frames (through every pass: main, chroma at the estimated tuning, CQT) gives the same
  // values within float32 rounding.
  const TempDir dir;
  const std::string wav = write_test_wav(dir);
  const std::string whole = (dir / "whole.h5").string(), chunked = (dir / "chunked.h5").string();
  const std::string list = "mfcc,chroma_stft,spectral_contrast,cqt_mag,tonnetz";
  auto r = run_songlines("features --device host --features " + list + " --input " + wav + " --output " + whole);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_songlines("features --device host --batch-frames 37 --features " + list + " --input " + wav + " --output " +
                    chunked);
  ASSERT_EQ(r.exit_code, 0) << r.output;

  FeatureOptions o;
  o.features = {"mfcc", "chroma_stft", "spectral_contrast", "cqt_mag", "tonnetz"};
  audio::LoadOptions lo;
  const audio::MonoAudio audio = audio::load_audio(wav, lo);
  DeviceFeatureEngine engine(o);
  const TrackFeatures direct = engine.compute_batch({std::span<const float>(audio.samples)}).at(0);
  const auto a = shard_frames(whole), b = shard_frames(chunked);
  ASSERT_EQ(a.size(), o.features.size());
  ASSERT_EQ(b.size(), o.features.size());
  for (const std::string& name : o.features) {
    const FeatureMatrix& e = direct.frames.at(name);
    const FeatureMatrix& x = a.at(name);
    ASSERT_LE(x.frames, e.frames) << name;
    ASSERT_GE(x.frames, e.frames - 1) << name;
    const std::vector<double> want(e.data.begin(), e.data.begin() + x.frames * e.dim);
    EXPECT_TRUE(MaxAbsNear(std::vector<double>(x.data.begin(), x.data.end()), want, 0.0, name + " vs compute_batch", e.dim));
    const FeatureMatrix& y = b.at(name);
    ASSERT_EQ(y.frames, x.frames) << name;
    const std::vector<double> got(y.data.begin(), y.data.end());
    if (name == "spectral_contrast" || name == "chroma_stft" || name == "tonnetz")
      EXPECT_TRUE(MaxAbsNear(got, want, 1e-4, name + " in chunks of 37", e.dim));
    else
      EXPECT_TRUE(RelativeL2Near(got, want, 1e-6, name + " in chunks of 37", e.dim));
  }
}

TEST(FeaturesCommandHost, DeviceFailureAndBadSamplesFailWithoutOutput) {
  const TempDir dir;
  const std::string wav = write_test_wav(dir);
  const std::string out = (dir / "o.h5").string();
  // A device failure in the batcher's engine thread (fault injection at its first batch) reaches the command.
  auto r = songlines::testing::run_command("SONGLINES_TEST_KILL_AT=device-batch-error:1 '" +
                                           songlines::testing::binary_path().string() +
                                           "' features --device host --features mfcc --input " + wav + " --output " + out);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("injected failure"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(out));
  // A track that cannot be used (a non-finite sample, refused by the decoder before the engine): exit 1 naming the
  // file and the sample.
  std::vector<float> y(5000, 0.1f);
  y[1234] = std::numeric_limits<float>::infinity();
  const std::string bad = (dir / "bad.wav").string();
  audio::write_audio(bad, y.data(), static_cast<int64_t>(y.size()), 22050, 1, audio::SampleEncoding::kFloat32);
  r = run_songlines("features --device host --features mfcc --input " + bad + " --output " + out);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(bad), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("non-finite"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("1234"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(out));
  // --batch-frames is the device engine's: refused on the reference, and negative, before any audio is read.
  r = run_songlines("features --device cpu --batch-frames 64 --input " + wav + " --output " + out);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--batch-frames"), std::string::npos) << r.output;
  r = run_songlines("features --device host --batch-frames -1 --input " + wav + " --output " + out);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST(FeaturesCommandHost, CommandsWithoutTheDeviceEngineRefuseHost) {
  // features and extract run the device engine; quickstart (the reference path) refuses "host" up front.
  const TempDir dir;
  const auto r = run_songlines("quickstart --device host --output " + (dir / "qs").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--device host"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "qs"));
}

}  // namespace
}  // namespace songlines::features
