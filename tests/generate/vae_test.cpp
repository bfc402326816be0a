// The conditioned VAE end to end on a tiny synthetic set where the place changes the music (scale, tempo,
// timbre): training lowers the loss, generation is deterministic per seed, differs between places, has the
// asked length and is finite, journeys have no clicks at segment joins, and checkpoints round-trip.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include "core/config.h"
#include "generate/vae_bundle.h"
#include "generate/vae_generator.h"
#include "generate/vae_training.h"
#include "support/test_support.h"
#include "support/tiny_mel.h"

namespace songlines::generate {
namespace {

using songlines::testing::tiny_mel_analysis;
using songlines::testing::tiny_vae_options;

models::VaeOptions tiny_model() {
  models::VaeOptions m = tiny_vae_options();
  m.kl_warmup_steps = 50;
  m.kl_weight = 0.1;
  m.conditional_prior = false;  // FiLM alone here; TinyPriorVae below trains the default, with the prior
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
  const auto a = tiny_mel_analysis();
  for (size_t k = 0; k < places().size(); ++k)
    for (int r = 0; r < per_place; ++r) {
      auto y = synthesize(places()[k], 2.0, a.sample_rate, seed + 100 * k + r);
      out.push_back({"p" + std::to_string(k) + "_" + std::to_string(r), places()[k].where,
                     mel_db(torch::tensor(y), a)});
    }
  return out;
}

// `steps` steps on the 4-place set (2 tracks each, one held out per place), seeded.
VaeBundle train_tiny(const models::VaeOptions& model, const std::function<void(const Json&)>& on_log,
                     int64_t steps = 250, torch_compat::Precision precision = torch_compat::Precision::kFp32) {
  VaeTrainOptions t;
  t.steps = steps;
  t.precision = precision;
  t.batch_size = 16;
  t.learning_rate = 3e-3;
  t.log_every = 25;
  t.seed = 1;
  t.device = "cpu";
  return train_vae(synthetic_set(2, 10), synthetic_set(1, 99), model, tiny_mel_analysis(), t, on_log);
}

class TinyVae : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    records_ = new std::vector<Json>();
    bundle_ = new VaeBundle(train_tiny(tiny_model(), [](const Json& r) { records_->push_back(r); }));
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

// Lengths a call cannot make in memory and nonsense iteration counts are refused up front (UsageError: exit 2),
// naming the option, before any work (the 100000 s request grew to 14 GB before).
TEST_F(TinyVae, RefusesLengthsAndIterationsItCannotDo) {
  auto message = [&](GenerateOptions o) {
    try {
      (void)generate_audio(*bundle_, o);
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  GenerateOptions o;
  o.place = places()[0].where;
  o.seconds = 100000;
  const std::string too_long = message(o);
  EXPECT_NE(too_long.find("--seconds"), std::string::npos) << too_long;
  EXPECT_NE(too_long.find("1200"), std::string::npos) << too_long;
  o.seconds = 1.0;
  o.griffin_lim_iterations = -5;
  const std::string iterations = message(o);
  EXPECT_NE(iterations.find("--griffin-lim-iterations"), std::string::npos) << iterations;
  EXPECT_NE(iterations.find("-5"), std::string::npos) << iterations;
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

// A 3 s journey between two places: the largest sample-to-sample jump where a segment fades in (plus a hop
// either side) stays below 1.5x the largest elsewhere, and the condition moves.
void expect_journey_without_clicks(VaeBundle& bundle) {
  GenerateOptions o;
  o.seconds = 3.0;  // 376 frames: 15 segments of 32 with overlap 8
  o.seed = 4;
  o.place = places()[0].where;
  o.to = places()[1].where;
  o.griffin_lim_iterations = 16;
  auto y = generate_audio(bundle, o);
  const int hop = tiny_mel_analysis().hop_length;
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

TEST_F(TinyVae, JourneysHaveNoClicksAtSegmentJoins) { expect_journey_without_clicks(*bundle_); }

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
  // A checkpoint from before the conditional prior (no key for it) loads as a model without one.
  const auto cfg = dir / kVaeConfigFile;
  ASSERT_TRUE(std::filesystem::exists(cfg));
  Json j = load_json_file(cfg.string());
  j["model"].erase("conditional_prior");
  std::ofstream(cfg) << j.dump(2);
  VaeBundle legacy = load_vae_bundle(dir.path(), torch::kCPU);
  EXPECT_FALSE(legacy.model_options.conditional_prior);
  EXPECT_EQ(generate_audio(legacy, o), generate_audio(*bundle_, o));
}

TEST_F(TinyVae, TransferKeepsLengthAndChangesWithPlace) {
  auto y = synthesize(places()[2], 1.0, 8000, 77);
  auto rec = transfer_audio(*bundle_, y, places()[2].where, places()[2].where, 0, 8);
  auto moved = transfer_audio(*bundle_, y, places()[2].where, places()[1].where, 0, 8);
  ASSERT_EQ(rec.size(), y.size());
  ASSERT_EQ(moved.size(), y.size());
  EXPECT_NE(rec, moved);
}

// ---- conditional prior p(z | place) -----------------------------------------------------------------------

TEST(VaeModel, ConditionalPriorKlEqualsAMonteCarloEstimate) {
  // KL(q || p) of vae_loss against E_q[log q(z) - log p(z)] estimated from samples of q, with the prior's and
  // the encoder's Gaussians taken from the (untrained, seeded) model: checks the closed form and its wiring.
  torch::manual_seed(3);
  auto o = tiny_model();
  o.conditional_prior = true;
  o.free_bits = 0.0;
  models::ConditionalVae net(o);
  {
    torch::NoGradGuard ng;  // move the prior away from N(0, I) so the test is not about the standard normal
    for (auto& p : net->named_parameters())
      if (p.key().rfind("prior_out.", 0) == 0) p.value().normal_(0.0, 0.3);
  }
  auto x = torch::randn({2, 1, 32, 32});
  auto v = models::places_to_unit_vectors({{48.85, 2.35}, {-33.87, 151.21}});
  const models::VaePrior prior = net->prior(v);
  EXPECT_EQ(prior.mu.sizes(), (std::vector<int64_t>{2, 4, 8, 1}));
  EXPECT_GT(prior.mu.abs().max().item<double>(), 0.05);
  torch::NoGradGuard ng;
  auto parts = models::vae_loss(net, x, v, /*step=*/1000);
  auto enc = net->encode(x, v);
  const int64_t S = 4000;
  auto gen = at::detail::createCPUGenerator(11);
  double sum = 0.0;
  for (int64_t s = 0; s < S; ++s) {
    auto z = enc.mu + torch::exp(0.5 * enc.logvar) * torch::randn(enc.mu.sizes(), gen);
    auto log_q = -0.5 * (enc.logvar + (z - enc.mu).pow(2) * torch::exp(-enc.logvar));
    auto log_p = -0.5 * (prior.logvar + (z - prior.mu).pow(2) * torch::exp(-prior.logvar));
    sum += (log_q - log_p).mean().item<double>();  // per latent element, like the closed form before scaling
  }
  const double latent_per_input = static_cast<double>(enc.mu.size(2) * enc.mu.size(3)) / (32.0 * 32.0);
  const double mc = sum / S * enc.mu.size(1) * latent_per_input;  // sum over channels of per-channel means
  const double closed = parts.kl.item<double>();
  std::printf("KL per input element: closed form %.5f, Monte Carlo (%lld samples) %.5f\n", closed,
              static_cast<long long>(S), mc);
  EXPECT_NEAR(mc, closed, 0.02 * std::abs(closed));
}

class TinyPriorVae : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto m = tiny_model();
    m.conditional_prior = true;  // the default
    bundle_ = new VaeBundle(train_tiny(m, nullptr));
  }
  static void TearDownTestSuite() { delete bundle_; }
  static VaeBundle* bundle_;
};
VaeBundle* TinyPriorVae::bundle_ = nullptr;

TEST_F(TinyPriorVae, PlacesGetDifferentPriorsAndGenerationIsDeterministic) {
  torch::NoGradGuard ng;
  auto v = models::places_to_unit_vectors({places()[0].where, places()[1].where});
  const models::VaePrior p = bundle_->net->prior(v);
  const double gap = (p.mu[0] - p.mu[1]).abs().mean().item<double>();
  std::printf("mean |prior mean difference| between two places after training: %.3f\n", gap);
  EXPECT_GT(gap, 0.05);  // learned: it started within 0.1 * weights of N(0, I) for every place
  GenerateOptions o;
  o.seconds = 1.0;
  o.seed = 3;
  o.place = places()[0].where;
  o.griffin_lim_iterations = 4;
  auto a = generate_audio(*bundle_, o);
  EXPECT_EQ(a, generate_audio(*bundle_, o));
  for (float s : a) ASSERT_TRUE(std::isfinite(s));
  o.place = places()[1].where;
  EXPECT_NE(a, generate_audio(*bundle_, o));
}

TEST_F(TinyPriorVae, TransferMovesTheTrackTowardsTheTargetPlace) {
  // A held-out track of place 2 moved to place 1: its time-mean mel profile ends nearer to place 1's real tracks
  // than its reconstruction (decoded at its own place) is; the reconstruction stays nearer to its own place.
  torch::NoGradGuard ng;
  const auto a = tiny_mel_analysis();
  auto profile = [](const torch::Tensor& mel) { return mel.to(torch::kCPU).mean(0); };  // [n_mels] dB
  auto place_profile = [&](size_t k) {
    auto sum = torch::zeros({a.n_mels});
    for (int r = 0; r < 3; ++r) sum += profile(mel_db(torch::tensor(synthesize(places()[k], 2.0, a.sample_rate, 500 + r)), a));
    return sum / 3.0;
  };
  const auto own = place_profile(2), target = place_profile(1);
  const auto mel = mel_db(torch::tensor(synthesize(places()[2], 2.0, a.sample_rate, 77)), a);
  const auto rec = profile(transfer_mel_db(*bundle_, mel, places()[2].where, places()[2].where));
  const auto moved = profile(transfer_mel_db(*bundle_, mel, places()[2].where, places()[1].where));
  auto dist = [](const torch::Tensor& x, const torch::Tensor& y) { return (x - y).norm().item<double>(); };
  std::printf("mel profile distance (dB): reconstruction to own %.1f, to target %.1f; moved to own %.1f, to target %.1f\n",
              dist(rec, own), dist(rec, target), dist(moved, own), dist(moved, target));
  EXPECT_LT(dist(rec, own), dist(rec, target));
  EXPECT_LT(dist(moved, target), dist(rec, target));
  EXPECT_LT(dist(moved, target), dist(moved, own));
}

TEST_F(TinyPriorVae, JourneysHaveNoClicksAtSegmentJoins) { expect_journey_without_clicks(*bundle_); }

TEST_F(TinyPriorVae, JourneyLatentMovesSmoothlyAndCheckpointsRoundTrip) {
  // A journey's prior moves column by column, continuously: sampled at 4x as many columns along the same
  // great circle, the largest step between neighbouring columns' prior means shrinks about 4x (a jump would
  // not shrink), and the model (prior included) survives a save and load.
  GenerateOptions o;
  o.seconds = 3.0;
  o.seed = 4;
  o.place = places()[0].where;
  o.to = places()[1].where;
  o.griffin_lim_iterations = 4;
  torch::NoGradGuard ng;
  auto largest_step = [&](int n) {
    std::vector<geo::LatLon> along;
    for (int c = 0; c < n; ++c) along.push_back(condition_at(o, (c + 0.5) / n));
    auto mu = bundle_->net->prior(models::places_to_unit_vectors(along)).mu;  // [n, C, zh, 1]
    return (mu.narrow(0, 1, n - 1) - mu.narrow(0, 0, n - 1)).abs().max().item<double>();
  };
  const double coarse = largest_step(64), fine = largest_step(256);
  std::printf("journey prior: largest column-to-column step %.4f at 64 columns, %.4f at 256\n", coarse, fine);
  ASSERT_GT(coarse, 0.0);
  EXPECT_LT(fine, 0.4 * coarse);
  testing::TempDir dir;
  save_vae_bundle(*bundle_, dir.path());
  VaeBundle loaded = load_vae_bundle(dir.path(), torch::kCPU);
  EXPECT_TRUE(loaded.model_options.conditional_prior);
  EXPECT_EQ(generate_audio(loaded, o), generate_audio(*bundle_, o));
}

// ---- training precision ----------------------------------------------------------------------------------

TEST(TrainingPrecision, ScopeSwitchesAutocastAndRestoresIt) {
  auto x = torch::randn({1, 1, 8, 8});
  auto w = torch::randn({2, 1, 3, 3});
  {
    torch_compat::PrecisionScope scope(torch_compat::Precision::kBf16, torch::kCPU);
    EXPECT_EQ(torch::conv2d(x, w).scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(torch::conv2d(x, w).scalar_type(), torch::kFloat32);
  {
    torch_compat::PrecisionScope scope(torch_compat::Precision::kTf32, torch::kCPU);  // CPU float32 stays IEEE
    EXPECT_EQ(torch::conv2d(x, w).scalar_type(), torch::kFloat32);
  }
  try {
    torch_compat::parse_precision("fp16", "train.precision");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("train.precision"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("fp16"), std::string::npos) << e.what();
  }
  Json j = VaeTrainOptions().to_json();
  EXPECT_EQ(j["precision"], "fp32");
  j["precision"] = "bf16";
  EXPECT_EQ(VaeTrainOptions::from_json(j).precision, torch_compat::Precision::kBf16);
}

TEST(TrainingPrecision, Bf16AutocastTrainsLikeFloat32AndTf32IsFloat32OnTheCpu) {
  // 120 steps from the same seed in each precision: bf16 changes the arithmetic (its losses differ from fp32's)
  // but trains as well (loss falls, final held-out reconstruction within 1.5x of fp32's); tf32 on a CPU is
  // float32 exactly.
  auto run = [](torch_compat::Precision p, std::vector<Json>* log) {
    auto m = tiny_model();
    m.conditional_prior = true;
    return train_tiny(m, [log](const Json& r) { log->push_back(r); }, 120, p);
  };
  std::vector<Json> f32, b16, t32;
  VaeBundle a = run(torch_compat::Precision::kFp32, &f32);
  VaeBundle b = run(torch_compat::Precision::kBf16, &b16);
  VaeBundle c = run(torch_compat::Precision::kTf32, &t32);
  ASSERT_GE(b16.size(), 2u);
  for (const auto& r : b16) ASSERT_TRUE(std::isfinite(r["loss"].get<double>())) << r.dump();
  const double f_first = f32.front()["loss"], f_last = f32.back()["val_reconstruction"];
  const double b_first = b16.front()["loss"], b_last = b16.back()["val_reconstruction"];
  std::printf("fp32: first loss %.5f, final val reconstruction %.5f; bf16: %.5f, %.5f\n", f_first, f_last, b_first,
              b_last);
  EXPECT_NE(f_first, b_first);
  EXPECT_LT(b16.back()["loss"].get<double>(), 0.8 * b_first);
  EXPECT_LT(b_last, 1.5 * f_last);
  ASSERT_EQ(t32.size(), f32.size());
  for (size_t i = 0; i < f32.size(); ++i) EXPECT_EQ(t32[i]["loss"], f32[i]["loss"]) << "record " << i;
  // Training leaves the process in float32.
  EXPECT_EQ(torch::conv2d(torch::randn({1, 1, 4, 4}), torch::randn({1, 1, 3, 3})).scalar_type(), torch::kFloat32);
}

}  // namespace
}  // namespace songlines::generate
