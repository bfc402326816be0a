#include "generate/vae_generator.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace songlines::generate {

geo::LatLon condition_at(const GenerateOptions& o, double t) {
  if (!o.to) return o.place;
  return geo::interpolate(o.place, *o.to, std::clamp(t, 0.0, 1.0));
}

namespace {

struct SegmentPlan {
  int64_t frames = 0;   // wanted output frames
  int64_t seg = 0;      // segment frames
  int64_t overlap = 0;  // frames
  int64_t stride = 0;   // seg - overlap
  int64_t count = 0;    // segments
  int64_t total() const { return overlap + count * stride; }  // >= frames
};

SegmentPlan plan_segments(const models::VaeOptions& m, int64_t frames, int overlap_frames) {
  const int64_t d = m.downsample();
  SegmentPlan p;
  p.frames = frames;
  p.seg = m.segment_frames;
  int64_t ov = overlap_frames > 0 ? overlap_frames : p.seg / 4;
  ov = std::clamp<int64_t>((ov / d) * d, 0, p.seg - d);  // latent columns must line up
  p.overlap = ov;
  p.stride = p.seg - ov;
  p.count = std::max<int64_t>(1, (frames - ov + p.stride - 1) / p.stride);
  return p;
}

// Decodes windows of a long latent [1, C, zh, total/d] under per-segment places and crossfades them:
// returns mel_db [total, n_mels].
torch::Tensor decode_crossfaded(VaeBundle& b, const torch::Tensor& z_long, const SegmentPlan& p,
                                const std::vector<geo::LatLon>& places) {
  const int64_t d = b.model_options.downsample();
  const int64_t n_mels = b.model_options.n_mels;
  auto out = torch::zeros({p.total(), n_mels}, torch::TensorOptions().device(b.device));
  auto weight = torch::zeros({p.total(), 1}, torch::TensorOptions().device(b.device));
  // Linear ramps over the overlap; complementary so weights in an overlap sum to 1.
  auto ramp = (torch::arange(p.overlap, torch::TensorOptions().device(b.device)) + 0.5) / std::max<int64_t>(p.overlap, 1);
  torch::NoGradGuard ng;
  for (int64_t k = 0; k < p.count; ++k) {
    auto z = z_long.narrow(3, k * p.stride / d, p.seg / d);
    auto v = models::places_to_unit_vectors({places[static_cast<size_t>(k)]}).to(b.device);
    auto mel = b.denormalise(b.net->decode(z, v))[0];  // [seg, n_mels]
    auto w = torch::ones({p.seg, 1}, torch::TensorOptions().device(b.device));
    if (p.overlap > 0) {
      if (k > 0) w.narrow(0, 0, p.overlap).copy_(ramp.unsqueeze(1));
      if (k + 1 < p.count) w.narrow(0, p.seg - p.overlap, p.overlap).copy_(1 - ramp.unsqueeze(1));
    }
    out.narrow(0, k * p.stride, p.seg).add_(mel * w);
    weight.narrow(0, k * p.stride, p.seg).add_(w);
  }
  return out / weight.clamp_min(1e-6);
}

int64_t frames_for(int64_t samples, int hop) { return 1 + samples / hop; }  // centered STFT frame count

}  // namespace

torch::Tensor generate_mel_db(VaeBundle& b, const GenerateOptions& o) {
  if (!(o.seconds > 0)) throw UsageError("generate: --seconds must be positive, got " + std::to_string(o.seconds));
  if (!(o.temperature >= 0)) throw UsageError("generate: --temperature must be >= 0");
  // The piece is built whole in memory (mel, magnitude and Griffin-Lim state: about 5 MB per second of audio).
  if (o.seconds > kMaxGenerateSeconds)
    throw UsageError("generate: --seconds " + std::to_string(o.seconds) + " is longer than the " +
                     std::to_string(static_cast<int>(kMaxGenerateSeconds)) +
                     " s one call makes (about 5 MB of memory per second of audio); generate shorter pieces");
  if (const std::string p = griffin_lim_iterations_problem(o.griffin_lim_iterations); !p.empty())
    throw UsageError("generate: --griffin-lim-iterations " + p);
  if (!geo::is_valid(o.place) || (o.to && !geo::is_valid(*o.to)))
    throw UsageError("generate: latitude must be in [-90, 90] and longitude in [-180, 180]");
  const int64_t samples = std::llround(o.seconds * b.audio.sample_rate);
  const SegmentPlan p = plan_segments(b.model_options, frames_for(samples, b.audio.hop_length), o.overlap_frames);
  const int64_t d = b.model_options.downsample();
  auto gen = at::detail::createCPUGenerator(o.seed);
  // Noise drawn on the CPU so a seed gives the same piece on every device.
  const int64_t columns = p.total() / d;
  auto z = torch::randn({1, b.model_options.latent_channels, b.model_options.n_mels / d, columns}, gen,
                        torch::kFloat32) *
           o.temperature;
  std::vector<geo::LatLon> places;
  for (int64_t k = 0; k < p.count; ++k) {
    const double centre = static_cast<double>(k * p.stride + p.seg / 2) / static_cast<double>(p.total());
    places.push_back(condition_at(o, p.count == 1 ? 0.5 : centre));
  }
  z = z.to(b.device);
  if (b.model_options.conditional_prior) {
    // z = mu_p + sigma_p * temperature * noise, the prior of the place at each latent column's centre (a journey's
    // prior moves with it, column by column, so the latent stays continuous).
    std::vector<geo::LatLon> column_places;
    for (int64_t c = 0; c < columns; ++c)
      column_places.push_back(condition_at(o, columns == 1 ? 0.5 : (static_cast<double>(c) + 0.5) / columns));
    torch::NoGradGuard ng;
    const models::VaePrior prior = b.net->prior(models::places_to_unit_vectors(column_places).to(b.device));
    // [columns, C, zh, 1] -> [1, C, zh, columns]
    auto mu = prior.mu.squeeze(3).permute({1, 2, 0}).unsqueeze(0);
    auto sigma = torch::exp(0.5 * prior.logvar).squeeze(3).permute({1, 2, 0}).unsqueeze(0);
    z = mu + sigma * z;
  }
  return decode_crossfaded(b, z, p, places).narrow(0, 0, p.frames);
}

torch::Tensor mel_db_to_audio(const VaeBundle& b, const torch::Tensor& mel_db, int64_t length, uint64_t seed,
                              int griffin_lim_iterations, int nnls_iterations) {
  torch::Tensor y;
  if (b.vocoder) {
    y = b.vocoder->synthesize(mel_db, length);
  } else {
    auto mag = mel_db_to_magnitude(mel_db, b.audio, nnls_iterations);  // [n_bins, frames]
    GriffinLimOptions gl;
    gl.n_fft = b.audio.n_fft;
    gl.hop_length = b.audio.hop_length;
    gl.iterations = griffin_lim_iterations;
    gl.seed = seed;
    y = griffin_lim(mag, length, gl).to(torch::kCPU);
  }
  const double peak = y.abs().max().item<double>();
  constexpr double kPeak = 0.99;  // leave headroom for 16-bit PCM
  if (peak > kPeak) y = y * (kPeak / peak);
  return torch::nan_to_num(y, 0.0, 0.0, 0.0);
}

std::vector<float> generate_audio(VaeBundle& b, const GenerateOptions& o) {
  auto mel = generate_mel_db(b, o);
  const int64_t samples = std::llround(o.seconds * b.audio.sample_rate);
  auto y = mel_db_to_audio(b, mel, samples, o.seed, o.griffin_lim_iterations, o.nnls_iterations).contiguous();
  return std::vector<float>(y.data_ptr<float>(), y.data_ptr<float>() + y.numel());
}

torch::Tensor transfer_mel_db(VaeBundle& b, const torch::Tensor& mel_db_in, geo::LatLon encode_place,
                              geo::LatLon decode_place) {
  if (mel_db_in.dim() != 2 || mel_db_in.size(0) < 1 || mel_db_in.size(1) != b.model_options.n_mels)
    throw InputError("transfer", "expected mel_db [frames, " + std::to_string(b.model_options.n_mels) + "]");
  torch::NoGradGuard ng;
  auto mel = mel_db_in.to(b.device, torch::kFloat32);
  const int64_t frames = mel.size(0);
  const SegmentPlan p = plan_segments(b.model_options, frames, 0);
  // Encode the whole piece at once (the encoder is fully convolutional), padded by edge repetition to the
  // plan's length, then decode with the same crossfaded windows as generation.
  auto padded = torch::cat({mel, mel.narrow(0, frames - 1, 1).expand({p.total() - frames, mel.size(1)})}, 0);
  auto v_enc = models::places_to_unit_vectors({encode_place}).to(b.device);
  auto z = b.net->encode(b.normalise(padded), v_enc).mu;
  if (b.model_options.conditional_prior) {
    // The latent carries the source place through its prior: keep the track's standardised offset from the
    // source's prior and move it onto the target's, z' = mu_t + sigma_t / sigma_s * (z - mu_s) (identity when
    // both places are the same, so reconstruction is unchanged).
    const models::VaePrior pr = b.net->prior(models::places_to_unit_vectors({encode_place, decode_place}).to(b.device));
    const auto mu_s = pr.mu.narrow(0, 0, 1), mu_t = pr.mu.narrow(0, 1, 1);
    const auto scale = torch::exp(0.5 * (pr.logvar.narrow(0, 1, 1) - pr.logvar.narrow(0, 0, 1)));
    z = mu_t + scale * (z - mu_s);
  }
  std::vector<geo::LatLon> places(static_cast<size_t>(p.count), decode_place);
  return decode_crossfaded(b, z, p, places).narrow(0, 0, frames);
}

std::vector<float> transfer_audio(VaeBundle& b, const std::vector<float>& samples, geo::LatLon encode_place,
                                  geo::LatLon decode_place, uint64_t seed, int griffin_lim_iterations) {
  if (samples.empty()) throw InputError("transfer", "no samples to encode");
  torch::NoGradGuard ng;
  auto y = torch::tensor(samples, torch::kFloat32).to(b.device);
  auto out = transfer_mel_db(b, mel_db(y, b.audio), encode_place, decode_place);  // [frames, n_mels]
  auto wav = mel_db_to_audio(b, out, static_cast<int64_t>(samples.size()), seed, griffin_lim_iterations).contiguous();
  return std::vector<float>(wav.data_ptr<float>(), wav.data_ptr<float>() + wav.numel());
}

}  // namespace songlines::generate
