#include "models/location_heads.h"

#include <cmath>
#include <numbers>

#include "core/error.h"
#include "geo/great_circle.h"

namespace songlines::models {

namespace {
constexpr double kDeg = 180.0 / std::numbers::pi;
// Smoothing of |p - y| (unit-vector chord) so that d/dp of the angle is finite at p == y.
constexpr double kChordEpsilon = 1e-8;

torch::Tensor great_circle_angle(const torch::Tensor& p, const torch::Tensor& y) {
  // p, y: [B, 3] unit vectors; angle = 2 asin(chord / 2), chord = |p - y| in [0, 2].
  auto chord = torch::sqrt((p - y).pow(2).sum(1) + kChordEpsilon);
  return 2.0 * torch::asin(torch::clamp(chord / 2.0, 0.0, 1.0 - 1e-7));
}

torch::Tensor mean_direction(const std::vector<torch::Tensor>& vs) {
  auto sum = torch::zeros_like(vs.at(0));
  for (const auto& v : vs) sum = sum + v;
  return torch::nn::functional::normalize(sum, torch::nn::functional::NormalizeFuncOptions().dim(1));
}

// log(C(kappa)) = log kappa - log 4pi - log sinh kappa, with log sinh k = k + log1p(-exp(-2k)) - log 2 (stable).
torch::Tensor vmf_log_normaliser(const torch::Tensor& kappa) {
  return torch::log(kappa) - std::log(4.0 * std::numbers::pi) - kappa - torch::log1p(-torch::exp(-2.0 * kappa)) +
         std::log(2.0);
}
constexpr int64_t kMedianGridPoints = 8000;

// n roughly evenly spaced unit vectors [n, 3] (golden-angle spiral).
torch::Tensor fibonacci_sphere(int64_t n, const torch::TensorOptions& options) {
  auto i = torch::arange(n, options) + 0.5;
  auto z = 1.0 - 2.0 * i / static_cast<double>(n);
  auto r = torch::sqrt(torch::clamp(1.0 - z * z, 0.0, 1.0));
  auto phi = i * (std::numbers::pi * (3.0 - std::sqrt(5.0)));
  return torch::stack({r * torch::cos(phi), r * torch::sin(phi), z}, 1);
}
}  // namespace

void HeadOptions::validate(const std::string& path) const {
  check_head_type(type, key_path(path, "type"));
  if (predict != "mode" && predict != "mean" && predict != "median")
    throw ConfigError(key_path(path, "predict") + ": expected \"mode\", \"mean\" or \"median\", got \"" + predict + "\"");
  if (!(initial_kappa > 0)) throw ConfigError(key_path(path, "initial_kappa") + ": must be > 0");
}

torch::Tensor LocationHeadImpl::uncertainty_km(const std::vector<torch::Tensor>& raws, const torch::Tensor& predicted) {
  return torch::full({predicted.size(0)}, std::numeric_limits<double>::quiet_NaN(), predicted.options());
}

// ---- sphere ----------------------------------------------------------------------------------------------
SphereHeadImpl::SphereHeadImpl(int64_t in) { linear_ = register_module("linear", torch::nn::Linear(in, 3)); }

torch::Tensor SphereHeadImpl::forward(const torch::Tensor& x) {
  return torch::nn::functional::normalize(linear_(x), torch::nn::functional::NormalizeFuncOptions().dim(1).eps(1e-8));
}

torch::Tensor SphereHeadImpl::loss(const torch::Tensor& raw, const torch::Tensor& target) {
  return great_circle_angle(raw, target).mean();
}

torch::Tensor SphereHeadImpl::predict(const std::vector<torch::Tensor>& raws) { return mean_direction(raws); }

// ---- latlon_mse ------------------------------------------------------------------------------------------
LatLonMseHeadImpl::LatLonMseHeadImpl(int64_t in) { linear_ = register_module("linear", torch::nn::Linear(in, 2)); }

torch::Tensor LatLonMseHeadImpl::forward(const torch::Tensor& x) { return linear_(x); }

torch::Tensor LatLonMseHeadImpl::loss(const torch::Tensor& raw, const torch::Tensor& target) {
  auto ll = unit_to_latlon(target);
  auto scaled = torch::stack({ll.select(1, 0) / 90.0, ll.select(1, 1) / 180.0}, 1);
  return (raw - scaled).pow(2).mean();
}

torch::Tensor LatLonMseHeadImpl::predict(const std::vector<torch::Tensor>& raws) {
  std::vector<torch::Tensor> units;
  for (const auto& r : raws) {
    auto lat = torch::clamp(r.select(1, 0) * 90.0, -90.0, 90.0);
    auto lon = r.select(1, 1) * 180.0;
    units.push_back(latlon_to_unit(torch::stack({lat, lon}, 1)));
  }
  return mean_direction(units);
}

// ---- vmf_mixture -----------------------------------------------------------------------------------------
VmfMixtureHeadImpl::VmfMixtureHeadImpl(int64_t in, const torch::Tensor& centres, const HeadOptions& options)
    : options_(options) {
  TORCH_CHECK(centres.dim() == 2 && centres.size(1) == 3 && centres.size(0) > 0,
              "vmf_mixture: centres must be [K, 3] with K > 0");
  int64_t k = centres.size(0);
  linear_ = register_module("linear", torch::nn::Linear(in, k));
  mu_raw_ = register_parameter("mu", centres.to(torch::kFloat32).clone(), options.learn_means);
  log_kappa_ = register_parameter("log_kappa", torch::full({k}, std::log(options.initial_kappa)));
}

torch::Tensor VmfMixtureHeadImpl::means() {
  return torch::nn::functional::normalize(mu_raw_, torch::nn::functional::NormalizeFuncOptions().dim(1));
}

torch::Tensor VmfMixtureHeadImpl::forward(const torch::Tensor& x) { return linear_(x); }

torch::Tensor VmfMixtureHeadImpl::log_density(const torch::Tensor& logits, const torch::Tensor& points) {
  auto kappa = torch::exp(log_kappa_);                               // [K]
  auto log_pi = torch::log_softmax(logits, 1);                       // [B, K]
  auto comp = vmf_log_normaliser(kappa).unsqueeze(0) + kappa.unsqueeze(0) * torch::matmul(points, means().t());  // [P, K]
  return torch::logsumexp(log_pi.unsqueeze(1) + comp.unsqueeze(0), 2);  // [B, P]
}

torch::Tensor VmfMixtureHeadImpl::loss(const torch::Tensor& raw, const torch::Tensor& target) {
  // Negative log-likelihood of each row's own target: diagonal of log_density without the [B, B] matrix.
  auto kappa = torch::exp(log_kappa_);
  auto comp = vmf_log_normaliser(kappa).unsqueeze(0) + kappa.unsqueeze(0) * torch::matmul(target, means().t());  // [B, K]
  return -torch::logsumexp(torch::log_softmax(raw, 1) + comp, 1).mean();
}

torch::Tensor VmfMixtureHeadImpl::weights(const std::vector<torch::Tensor>& raws) {
  auto w = torch::zeros_like(raws.at(0));
  for (const auto& r : raws) w = w + torch::softmax(r, 1);
  return w / static_cast<double>(raws.size());
}

torch::Tensor VmfMixtureHeadImpl::predict(const std::vector<torch::Tensor>& raws) {
  auto w = weights(raws);  // [B, K]
  auto mu = means();       // [K, 3]
  if (options_.predict == "median") {
    // The point minimising the expected great-circle distance to the component means (the Bayes prediction
    // for mean-km error), searched among the means and a Fibonacci grid (~250 km spacing):
    // cost = weights [B, K] @ angles [K, C].
    auto candidates = torch::cat({mu, fibonacci_sphere(kMedianGridPoints, mu.options())}, 0);  // [C, 3]
    auto angles = torch::acos(torch::clamp(torch::matmul(mu, candidates.t()), -1.0, 1.0));
    return candidates.index_select(0, torch::matmul(w, angles).argmin(1));
  }
  if (options_.predict == "mean")
    return torch::nn::functional::normalize(torch::matmul(w, mu), torch::nn::functional::NormalizeFuncOptions().dim(1));
  // Mode: the component mean with the highest mixture density (densities evaluated at the K means).
  auto kappa = torch::exp(log_kappa_);
  auto comp = vmf_log_normaliser(kappa).unsqueeze(0) + kappa.unsqueeze(0) * torch::matmul(mu, mu.t());  // [P=K, K]
  auto dens = torch::logsumexp(torch::log(w + 1e-30).unsqueeze(1) + comp.unsqueeze(0), 2);               // [B, K]
  return mu.index_select(0, dens.argmax(1));
}

torch::Tensor VmfMixtureHeadImpl::uncertainty_km(const std::vector<torch::Tensor>& raws, const torch::Tensor& predicted) {
  auto w = weights(raws);                                                            // [B, K]
  auto cosines = torch::clamp(torch::matmul(predicted, means().t()), -1.0, 1.0);     // [B, K]
  return (w * torch::acos(cosines)).sum(1) * geo::kEarthRadiusKm;
}

// ---- registry and conversions ----------------------------------------------------------------------------
namespace {
// One row per head type; a new head is its class above and one row here.
struct HeadKind {
  const char* type;
  std::shared_ptr<LocationHeadImpl> (*make)(int64_t in, const torch::Tensor& centres, const HeadOptions& options);
};

constexpr HeadKind kHeads[] = {
    {"sphere",
     [](int64_t in, const torch::Tensor&, const HeadOptions&) -> std::shared_ptr<LocationHeadImpl> {
       return std::make_shared<SphereHeadImpl>(in);
     }},
    {"latlon_mse",
     [](int64_t in, const torch::Tensor&, const HeadOptions&) -> std::shared_ptr<LocationHeadImpl> {
       return std::make_shared<LatLonMseHeadImpl>(in);
     }},
    {"vmf_mixture",
     [](int64_t in, const torch::Tensor& centres, const HeadOptions& o) -> std::shared_ptr<LocationHeadImpl> {
       return std::make_shared<VmfMixtureHeadImpl>(in, centres, o);
     }},
};

const HeadKind& head_kind(const std::string& type, const std::string& key_path) {
  for (const auto& h : kHeads)
    if (type == h.type) return h;
  std::string known;
  for (const auto& h : kHeads) known += (known.empty() ? "" : ", ") + std::string(h.type);
  throw ConfigError(key_path + ": unknown head \"" + type + "\" (" + known + ")");
}
}  // namespace

std::vector<std::string> head_types() {
  std::vector<std::string> types;
  for (const auto& h : kHeads) types.emplace_back(h.type);
  return types;
}

void check_head_type(const std::string& type, const std::string& key_path) { (void)head_kind(type, key_path); }

std::shared_ptr<LocationHeadImpl> make_head(const HeadOptions& options, int64_t in, const torch::Tensor& centres) {
  return head_kind(options.type, "head.type").make(in, centres, options);
}

torch::Tensor unit_to_latlon(const torch::Tensor& v) {
  auto n = v.norm(2, 1).clamp_min(1e-12);
  auto lat = torch::asin(torch::clamp(v.select(1, 2) / n, -1.0, 1.0)) * kDeg;
  auto lon = torch::atan2(v.select(1, 1), v.select(1, 0)) * kDeg;
  return torch::stack({lat, lon}, 1);
}

torch::Tensor latlon_to_unit(const torch::Tensor& latlon) {
  auto lat = latlon.select(1, 0) / kDeg, lon = latlon.select(1, 1) / kDeg;
  return torch::stack({torch::cos(lat) * torch::cos(lon), torch::cos(lat) * torch::sin(lon), torch::sin(lat)}, 1);
}

}  // namespace songlines::models
