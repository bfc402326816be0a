// The conditioned VAE end to end on a tiny synthetic set where the place changes the music (scale, tempo,
// timbre): training lowers the loss, generation is deterministic per seed, differs between places, has the
// asked length and is finite, journeys have no clicks at segment joins, and checkpoints round-trip.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <random>

#include "generate/vae_generator.h"
#include "generate/vae_training.h"
#include "support/test_support.h"

namespace songlines::generate {
namespace {

// Small analysis so the whole suite runs in seconds: 8 kHz, 32 mel bands, 8 ms hops.
MelAnalysisOptions tiny_audio() {
  MelAnalysisOptions a;
  a.sample_rate = 8000;
  a.n_fft = 256;
  a.hop_length = 64;
  a.n_mels = 32;
  return a;
}

models::VaeOptions tiny_model() {
  models::VaeOptions m;
  m.n_mels = 32;
  m.segment_frames = 32;
  m.channels = {8, 16};
  m.latent_channels = 4;
  m.n_fourier = 4;
  m.cond_dim = 16;
  m.kl_warmup_steps = 50;
  m.kl_weight = 0.1;
  return m;
}

struct Place {
  geo::LatLon where;
  std::vector<double> scale;  // semitone steps from the root
  double root_hz;
  double note_s;              // tempo
  int harmonics;              // timbre
};

const std::vector<Place>& places() {
  static const std::vector<Place> p = {
      {{48.85, 2.35}, {0, 2, 4, 5, 7, 9, 11}, 220.0, 0.25, 1},      // major, slow, pure
      {{35.68, 139.69}, {0, 2, 3, 7, 8}, 330.0, 0.125, 4},          // pentatonic, fast, bright
      {{-33.87, 151.21}, {0, 3, 5, 6, 7, 10}, 147.0, 0.5, 2},       // blues, very slow
      {{-12.05, -77.04}, {0, 1, 4, 5, 7, 8, 10}, 440.0, 0.0625, 3}, // phrygian dominant, very fast
  };
  return p;
}

std::vector<float> synthesize(const Place& p, double seconds, int sr, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, p.scale.size() - 1);
  const int64_t n = static_cast<int64_t>(seconds * sr);
  const int64_t note_len = static_cast<int64_t>(p.note_s * sr);
  std::vector<float> y(static_cast<size_t>(n));
  double f = p.root_hz;
  for (int64_t i = 0; i < n; ++i) {
    if (i % note_len == 0) f = p.root_hz * std::pow(2.0, p.scale[pick(rng)] / 12.0);
    const double t = static_cast<double>(i) / sr;
    const double env = std::exp(-3.0 * static_cast<double>(i % note_len) / note_len);
    double s = 0;
    for (int h = 1; h <= p.harmonics; ++h) s += std::sin(2 * M_PI * f * h * t) / h;
    y[static_cast<size_t>(i)] = static_cast<float>(0.3 * env * s);
  }
  return y;
}

std::vector<MelTrack> synthetic_set(int per_place, uint64_t seed) {
  std::vector<MelTrack> out;
  const auto a = tiny_audio();
  for (size_t k = 0; k < places().size(); ++k)
    for (int r = 0; r < per_place; ++r) {
      auto y = synthesize(places()[k], 2.0, a.sample_rate, seed + 100 * k + r);
      out.push_back({"p" + std::to_string(k) + "_" + std::to_string(r), places()[k].where,
                     mel_db(torch::tensor(y), a)});
    }
  return out;
}

class TinyVae : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    VaeTrainOptions t;
    t.steps = 250;
    t.batch_size = 16;
    t.learning_rate = 3e-3;
    t.log_every = 25;
    t.seed = 1;
    t.device = "cpu";
    auto train = synthetic_set(2, 10);
    auto val = synthetic_set(1, 99);
    records_ = new std::vector<Json>();
    bundle_ = new VaeBundle(train_vae(train, val, tiny_model(), tiny_audio(), t,
                                      [](const Json& r) { records_->push_back(r); }));
  }
  static void TearDownTestSuite() {
    delete bundle_;
    delete records_;
  }
  static VaeBundle* bundle_;
  static std::vector<Json>* records_;
};
VaeBundle* TinyVae::bundle_ = nullptr;
std::vector<Json>* TinyVae::records_ = nullptr;

TEST(VaeModel, ShapesOfEncodeAndDecode) {
  torch::manual_seed(0);
  models::ConditionalVae net(tiny_model());
  auto x = torch::randn({3, 1, 32, 64});
  auto v = models::places_to_unit_vectors({{0, 0}, {10, 20}, {-30, 40}});
  auto enc = net->encode(x, v);
  EXPECT_EQ(enc.mu.sizes(), (std::vector<int64_t>{3, 4, 8, 16}));
  EXPECT_EQ(enc.logvar.sizes(), enc.mu.sizes());
  EXPECT_EQ(net->decode(enc.mu, v).sizes(), x.sizes());
  EXPECT_EQ(net->adversary(enc.mu).sizes(), (std::vector<int64_t>{3, 3}));
}

TEST(VaeModel, ConfigErrorsNameTheKey) {
  Json j = tiny_model().to_json();
  j["segment_frames"] = 30;
  try {
    models::VaeOptions::from_json(j);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("model.segment_frames"), std::string::npos) << e.what();
  }
  Json k = tiny_model().to_json();
  k["latnet_channels"] = 3;
  EXPECT_THROW(models::VaeOptions::from_json(k), ConfigError);
}

TEST_F(TinyVae, LossDecreases) {
  ASSERT_GE(records_->size(), 4u);
  const double first = records_->front().at("reconstruction").get<double>();
  const double last = records_->back().at("reconstruction").get<double>();
  const double val = records_->back().at("val_reconstruction").get<double>();
  std::printf("reconstruction MSE (normalised): first %.4f last %.4f held-out %.4f\n", first, last, val);
  EXPECT_LT(last, 0.5 * first);
  EXPECT_LT(val, 0.8);  // below the 1.0 of predicting the per-band mean
}

TEST_F(TinyVae, GenerationIsDeterministicPerSeedWithTheRightLength) {
  GenerateOptions o;
  o.seconds = 1.3;
  o.seed = 5;
  o.place = places()[0].where;
  o.griffin_lim_iterations = 8;
  auto a = generate_audio(*bundle_, o);
  auto b = generate_audio(*bundle_, o);
  ASSERT_EQ(a.size(), static_cast<size_t>(std::llround(1.3 * 8000)));
  EXPECT_EQ(a, b);
  for (float s : a) ASSERT_TRUE(std::isfinite(s) && std::abs(s) <= 1.0f);
  double energy = 0;
  for (float s : a) energy += s * s;
  EXPECT_GT(energy / a.size(), 1e-8) << "silent output";
  o.seed = 6;
  EXPECT_NE(generate_audio(*bundle_, o), a);
}

TEST_F(TinyVae, DifferentPlacesGiveDifferentMusic) {
  GenerateOptions o;
  o.seconds = 2.0;
  o.seed = 1;
  // Same latent noise, different condition: the difference is the condition's effect alone.
  std::vector<torch::Tensor> mels;
  for (const auto& p : places()) {
    o.place = p.where;
    mels.push_back(generate_mel_db(*bundle_, o));
  }
  o.temperature = 1.0;
  double min_between = 1e9;
  for (size_t i = 0; i < mels.size(); ++i)
    for (size_t j = i + 1; j < mels.size(); ++j)
      min_between = std::min(min_between, (mels[i] - mels[j]).abs().mean().item<double>());
  // Scale: how much two seeds differ at the same place (content variation).
  o.place = places()[0].where;
  o.seed = 2;
  const double between_seeds = (generate_mel_db(*bundle_, o) - mels[0]).abs().mean().item<double>();
  std::printf("mean |mel_db difference|: closest two places %.2f dB, two seeds at one place %.2f dB\n", min_between,
              between_seeds);
  EXPECT_GT(min_between, 1.0);  // dB
}

TEST_F(TinyVae, JourneysHaveNoClicksAtSegmentJoins) {
  GenerateOptions o;
  o.seconds = 3.0;  // 376 frames: 15 segments of 32 with overlap 8
  o.seed = 4;
  o.place = places()[0].where;
  o.to = places()[1].where;
  o.griffin_lim_iterations = 16;
  auto y = generate_audio(*bundle_, o);
  const int hop = tiny_audio().hop_length;
  const int64_t seg = 32, overlap = 8, stride = seg - overlap;
  std::vector<bool> near_join(y.size(), false);
  for (int64_t k = 1; k * stride * hop < static_cast<int64_t>(y.size()); ++k) {
    // The region where segment k fades in, plus one hop either side.
    const int64_t a = (k * stride - 1) * hop, b = (k * stride + overlap + 1) * hop;
    for (int64_t i = std::max<int64_t>(a, 0); i < std::min<int64_t>(b, y.size()); ++i) near_join[i] = true;
  }
  double join_max = 0, within_max = 0;
  for (size_t i = 1; i < y.size(); ++i) {
    const double jump = std::abs(y[i] - y[i - 1]);
    (near_join[i] ? join_max : within_max) = std::max(near_join[i] ? join_max : within_max, jump);
  }
  std::printf("journey: max sample jump at joins %.4f, elsewhere %.4f\n", join_max, within_max);
  ASSERT_GT(within_max, 0.0);
  EXPECT_LT(join_max, 1.5 * within_max);
  // The condition moves: start and end of the journey differ from each other.
  EXPECT_NE(condition_at(o, 0.0).lat, condition_at(o, 1.0).lat);
}

TEST_F(TinyVae, CheckpointRoundTripGivesTheSameAudio) {
  testing::TempDir dir;
  save_vae_bundle(*bundle_, dir.path());
  VaeBundle loaded = load_vae_bundle(dir.path(), torch::kCPU);
  EXPECT_EQ(loaded.model_options, bundle_->model_options);
  EXPECT_EQ(loaded.audio, bundle_->audio);
  GenerateOptions o;
  o.seconds = 0.5;
  o.place = {10, 10};
  o.griffin_lim_iterations = 4;
  EXPECT_EQ(generate_audio(loaded, o), generate_audio(*bundle_, o));
  EXPECT_THROW(load_vae_bundle(dir / "nothing", torch::kCPU), InputError);
}

TEST_F(TinyVae, TransferKeepsLengthAndChangesWithPlace) {
  auto y = synthesize(places()[2], 1.0, 8000, 77);
  auto rec = transfer_audio(*bundle_, y, places()[2].where, places()[2].where, 0, 8);
  auto moved = transfer_audio(*bundle_, y, places()[2].where, places()[1].where, 0, 8);
  ASSERT_EQ(rec.size(), y.size());
  ASSERT_EQ(moved.size(), y.size());
  EXPECT_NE(rec, moved);
}

}  // namespace
}  // namespace songlines::generate
