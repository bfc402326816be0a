// FeatureOptions: strict JSON round trip, errors that name the key, feature dimensions.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "features/feature_extractor.h"
#include "features/feature_options.h"

namespace songlines::features {
namespace {

TEST(FeatureOptions, JsonRoundTripKeepsEveryField) {
  FeatureOptions o;
  o.stft.n_fft = 1024;
  o.mel.n_mels = 64;
  o.chroma_stft.tuning = 0.25;
  o.tonnetz_chroma = TonnetzChroma::kStft;
  o.features = {"mfcc", "mel_db"};
  const FeatureOptions back = FeatureOptions::from_json(o.to_json());
  EXPECT_TRUE(back == o);
  EXPECT_FALSE(FeatureOptions::from_json(FeatureOptions{}.to_json()).chroma_stft.tuning.has_value());
}

TEST(FeatureOptions, UnknownKeyNamesItsPath) {
  Json j = FeatureOptions{}.to_json();
  j["mel"]["n_melz"] = 3;
  try {
    FeatureOptions::from_json(j);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("features.mel"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("n_melz"), std::string::npos) << e.what();
  }
}

TEST(FeatureOptions, WrongTypeAndBadValuesThrow) {
  EXPECT_THROW(FeatureOptions::from_json(Json{{"stft", {{"n_fft", "big"}}}}), ConfigError);
  EXPECT_THROW(FeatureOptions::from_json(Json{{"stft", {{"hop_length", 0}}}}), ConfigError);
  EXPECT_THROW(FeatureOptions::from_json(Json{{"features", {"mfcc", "mfcc2"}}}), ConfigError);
  EXPECT_THROW(FeatureOptions::from_json(Json{{"tonnetz_chroma", "mel"}}), ConfigError);
  try {
    FeatureOptions::from_json(Json{{"mfcc", {{"n_mfcc", 500}}}});
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("features.mfcc.n_mfcc"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("500"), std::string::npos) << e.what();
  }
}

TEST(FeatureOptions, DimensionsAtDefaults) {
  const FeatureOptions o;
  EXPECT_EQ(o.feature_dim("stft_mag"), 1025);
  EXPECT_EQ(o.feature_dim("melspectrogram"), 128);
  EXPECT_EQ(o.feature_dim("mel_db"), 128);
  EXPECT_EQ(o.feature_dim("mfcc"), 20);
  EXPECT_EQ(o.feature_dim("chroma_stft"), 12);
  EXPECT_EQ(o.feature_dim("spectral_contrast"), 7);
  EXPECT_EQ(o.feature_dim("cqt_mag"), 252);
  EXPECT_EQ(o.feature_dim("chroma_cqt"), 12);
  EXPECT_EQ(o.feature_dim("tonnetz"), 6);
  EXPECT_THROW(o.feature_dim("mfccs"), UsageError);
  EXPECT_EQ(all_feature_names().size(), 9u);
  EXPECT_EQ(seed_feature_names().size(), 4u);
}

TEST(FeatureExtractor, RejectsEmptyAndNonFiniteInput) {
  FeatureOptions o;
  o.features = {"mfcc"};
  const FeatureExtractor fx(o);
  std::vector<float> y(4096, 0.1f);
  EXPECT_THROW(fx.compute(y.data(), 0), InputError);
  y[100] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(fx.compute(y.data(), static_cast<int64_t>(y.size())), InputError);
}

}  // namespace
}  // namespace songlines::features
