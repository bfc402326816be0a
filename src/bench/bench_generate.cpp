// songlines bench generate: the VAE's speed on this machine.
//   (a) training throughput: crops per second of train_vae at the default model size (128 mel bands x 128
//       frames, channels 32-64-128-128), batch 16, on seeded synthetic music, in fp32 (the peer), tf32 (CUDA
//       only) and bf16 autocast, each as a ratio to fp32;
//   (b) generation: seconds of audio per second for a --seconds piece, split into the decoder (latent ->
//       crossfaded mel_db) and the audio path (NNLS mel inversion + 32 fast Griffin-Lim iterations) — the
//       peer measured in the same run: the audio path alone is the ceiling generation can approach;
//   (c) the learned vocoder's audio path (generate/vocoder_bundle.h, default size) on the same mel, and
//       generation end to end through it.
// Weights do not change the cost, so a briefly trained model stands in for a real run.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "bench/benchmark.h"
#include "core/error.h"
#include "extract/synthetic_music.h"
#include "generate/vae_generator.h"
#include "generate/vae_training.h"
#include "models/torch_compat.h"

namespace songlines::bench {
namespace {

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// Wall seconds of f; f ends with a host copy or a scalar read, which waits for the device.
template <typename F>
double seconds_of(F&& f) {
  auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int run_generate(const cxxopts::ParseResult& args) {
  const double seconds = args["seconds"].as<double>();
  const int repeats = std::max(1, args["repeats"].as<int>());
  const int n_tracks = std::max(1, std::min(args["tracks"].as<int>(), 8));
  if (!(seconds > 0)) throw UsageError("bench generate: --seconds must be > 0");
  const torch::Device device = torch_compat::resolve_device("auto");
  generate::MelAnalysisOptions audio;  // the shards' analysis: 22050 Hz, n_fft 2048, hop 512, 128 bands
  models::VaeOptions model;            // default model size (docs/vae.md)

  // Training data: n_tracks seeded synthetic pieces of 8 s, as mel_db.
  std::vector<generate::MelTrack> tracks;
  for (int i = 0; i < n_tracks; ++i) {
    auto o = extract::default_synthetic_tracks(n_tracks, 8.0, 7)[static_cast<size_t>(i)].options;
    auto y = extract::synthesize_music(o);
    tracks.push_back({"t" + std::to_string(i), {10.0 * i, 20.0 * i}, generate::mel_db(torch::tensor(y), audio)});
  }
  generate::VaeTrainOptions t;
  t.batch_size = 16;
  t.log_every = 1000000;
  t.device = device.str();
  t.seed = 1;
  const int64_t steps = 8;
  std::printf("bench generate: device %s, default VAE (%d mel bands x %d frames), %d repeats, medians\n",
              device.str().c_str(), model.n_mels, model.segment_frames, repeats);

  // Training in each precision, fp32 first (the peer the others are compared with); tf32 only where it
  // differs from fp32 (CUDA). Each precision gets its own warm-up.
  std::vector<torch_compat::Precision> precisions = {torch_compat::Precision::kFp32};
  if (device.is_cuda()) precisions.push_back(torch_compat::Precision::kTf32);
  precisions.push_back(torch_compat::Precision::kBf16);
  generate::VaeBundle bundle;
  double fp32_crops_per_s = 0;
  for (const auto precision : precisions) {
    t.precision = precision;
    t.steps = 2;  // warm-up: allocator, kernels, thread pool
    bundle = generate::train_vae(tracks, {}, model, audio, t);
    t.steps = steps;
    std::vector<double> train_s;
    for (int r = 0; r < repeats; ++r)
      train_s.push_back(seconds_of([&] { bundle = generate::train_vae(tracks, {}, model, audio, t); }));
    const double crops_per_s = steps * t.batch_size / median_of(train_s);
    if (precision == torch_compat::Precision::kFp32) fp32_crops_per_s = crops_per_s;
    std::printf("  training %-8s %8.1f crops/s  (%ld steps x batch %d, median %.2f s; %.2fx fp32)\n",
                torch_compat::to_string(precision).c_str(), crops_per_s, static_cast<long>(steps), t.batch_size,
                median_of(train_s), crops_per_s / fp32_crops_per_s);
  }
  t.precision = torch_compat::Precision::kFp32;
  bundle = generate::train_vae(tracks, {}, model, audio, t);  // generation below times a float32 model

  generate::GenerateOptions g;
  g.seconds = seconds;
  g.place = {48.85, 2.35};
  {  // warm-up
    generate::GenerateOptions w = g;
    w.seconds = std::min(seconds, 3.0);
    generate::generate_audio(bundle, w);
  }
  const int64_t length = static_cast<int64_t>(std::llround(seconds * audio.sample_rate));
  std::vector<double> decoder_s, audio_path_s;
  for (int r = 0; r < repeats; ++r) {
    g.seed = static_cast<uint64_t>(r);
    torch::Tensor mel;
    decoder_s.push_back(seconds_of([&] { mel = generate::generate_mel_db(bundle, g).to(torch::kCPU); }));
    audio_path_s.push_back(seconds_of([&] {
      generate::mel_db_to_audio(bundle, mel.to(bundle.device), length, g.seed, g.griffin_lim_iterations,
                                g.nnls_iterations)
          .to(torch::kCPU);
    }));
  }
  const double dec = median_of(decoder_s), path = median_of(audio_path_s);
  std::printf("  decoder           %8.1f s of audio/s  (median %.3f s for %.1f s)\n", seconds / dec, dec, seconds);
  std::printf("  audio path (peer) %8.1f s of audio/s  (NNLS + %d Griffin-Lim iterations, median %.3f s)\n",
              seconds / path, g.griffin_lim_iterations, path);
  std::printf("  generation        %8.1f s of audio/s  (decoder share %.0f%%)\n", seconds / (dec + path),
              100.0 * dec / (dec + path));

  // (c) The learned vocoder's audio path (models/vocoder.h at its default size; seeded weights: the cost does not
  // depend on them), on the same mel, and generation end to end through it.
  torch::manual_seed(3);
  auto vocoder = std::make_shared<generate::VocoderBundle>();
  vocoder->audio = audio;
  vocoder->model_options = generate::vocoder_options_for(audio);
  vocoder->net = models::Vocoder(vocoder->model_options);
  vocoder->net->to(device);
  vocoder->net->eval();
  vocoder->device = device;
  bundle.vocoder = vocoder;
  std::vector<double> vocoder_s, end_to_end_s;
  {
    auto mel = generate::generate_mel_db(bundle, g);
    generate::mel_db_to_audio(bundle, mel, length, 0);  // warm-up
    for (int r = 0; r < repeats; ++r) {
      vocoder_s.push_back(seconds_of([&] { generate::mel_db_to_audio(bundle, mel, length, 0).to(torch::kCPU); }));
      g.seed = static_cast<uint64_t>(r);
      end_to_end_s.push_back(seconds_of([&] { generate::generate_audio(bundle, g); }));
    }
  }
  int64_t parameters = 0;
  for (const auto& p : vocoder->net->parameters()) parameters += p.numel();
  const double voc = median_of(vocoder_s), e2e = median_of(end_to_end_s);
  std::printf("  vocoder path      %8.1f s of audio/s  (%ld parameters, median %.3f s; %.0fx the Griffin-Lim path)\n",
              seconds / voc, static_cast<long>(parameters), voc, path / voc);
  std::printf("  generation, vocoder %6.1f s of audio/s  (end to end, median %.3f s)\n", seconds / e2e, e2e);
  return 0;
}

SONGLINES_REGISTER_BENCHMARK(Benchmark{"generate",
                                       "VAE training crops/s and generation seconds of audio per second "
                                       "(decoder vs mel inversion + Griffin-Lim vs the learned vocoder)",
                                       run_generate});

}  // namespace
}  // namespace songlines::bench
