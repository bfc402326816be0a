// Output heads of the location model. A head maps encoder features [B, in] to its raw output, computes a loss
// against true points (unit 3-vectors [B, 3], x toward (0,0), z north, as geo::to_unit_vector), and turns raw
// outputs into predicted unit vectors. Chosen by "type" in configs from a registry (the table at the end of
// location_heads.cpp; after tiny-cuda-nn's "otype" factory): sphere, latlon_mse, vmf_mixture.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/json_fields.h"
#include "models/torch_compat.h"

namespace songlines::models {

struct HeadOptions {
  std::string type = "sphere";  ///< head_types(): "sphere" | "latlon_mse" | "vmf_mixture"
  /// vmf_mixture: initial concentration kappa of every component (dimensionless; 1/kappa ~ angular variance).
  double initial_kappa = 50.0;
  /// vmf_mixture: learn the component means (else they stay at their initial training locations).
  bool learn_means = false;
  /// vmf_mixture: "mode" (the most probable component mean), "mean" (probability-weighted spherical mean) or
  /// "median" (the component mean with the least expected great-circle distance: minimises mean km).
  std::string predict = "mode";

  /// Its JSON keys (core/json_fields.h).
  template <class S, class V>
  static void fields(S& s, V& v) {
    v("type", s.type);
    v("initial_kappa", s.initial_kappa);
    v("learn_means", s.learn_means);
    v("predict", s.predict);
  }
  /// ConfigError naming path.key for an unknown head type or prediction, or a kappa <= 0.
  void validate(const std::string& path) const;
};

class LocationHeadImpl : public torch::nn::Module {
 public:
  /// Raw output for features x [B, in].
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
  /// Mean loss over the batch; target: unit vectors [B, 3].
  virtual torch::Tensor loss(const torch::Tensor& raw, const torch::Tensor& target) = 0;
  /// Predicted unit vectors [B, 3] from raw outputs averaged over an ensemble (one raw tensor per member).
  virtual torch::Tensor predict(const std::vector<torch::Tensor>& raws) = 0;
  /// Uncertainty radius in km per row [B] (NaN where the head has no notion of it).
  virtual torch::Tensor uncertainty_km(const std::vector<torch::Tensor>& raws, const torch::Tensor& predicted);
};

/// Unit 3-vector output (normalised linear layer); loss: great-circle angle in radians, 2*asin(|p - y| / 2),
/// smoothed at 0 so the gradient stays finite where prediction and target coincide.
class SphereHeadImpl : public LocationHeadImpl {
 public:
  explicit SphereHeadImpl(int64_t in);
  torch::Tensor forward(const torch::Tensor& x) override;
  torch::Tensor loss(const torch::Tensor& raw, const torch::Tensor& target) override;
  torch::Tensor predict(const std::vector<torch::Tensor>& raws) override;

 private:
  torch::nn::Linear linear_{nullptr};
};

/// The seed project's naive baseline: regress (latitude/90, longitude/180) with mean squared error.
class LatLonMseHeadImpl : public LocationHeadImpl {
 public:
  explicit LatLonMseHeadImpl(int64_t in);
  torch::Tensor forward(const torch::Tensor& x) override;
  torch::Tensor loss(const torch::Tensor& raw, const torch::Tensor& target) override;
  torch::Tensor predict(const std::vector<torch::Tensor>& raws) override;

 private:
  torch::nn::Linear linear_{nullptr};
};

/// Mixture of K von Mises-Fisher distributions on S^2: p(y) = sum_k pi_k C(kappa_k) exp(kappa_k mu_k . y),
/// C(kappa) = kappa / (4 pi sinh kappa). The network gives the mixture logits [B, K]; means mu_k start at the
/// training locations (a classifier over known places with a spherical likelihood); log kappa_k are learned.
/// Prediction: the mode (most probable mean under the mixture density) or the weighted spherical mean.
class VmfMixtureHeadImpl : public LocationHeadImpl {
 public:
  /// centres: [K, 3] unit vectors (training locations).
  VmfMixtureHeadImpl(int64_t in, const torch::Tensor& centres, const HeadOptions& options);
  torch::Tensor forward(const torch::Tensor& x) override;  ///< mixture logits [B, K]
  torch::Tensor loss(const torch::Tensor& raw, const torch::Tensor& target) override;
  torch::Tensor predict(const std::vector<torch::Tensor>& raws) override;
  /// Expected great-circle distance (km) from the prediction to the mixture's component means.
  torch::Tensor uncertainty_km(const std::vector<torch::Tensor>& raws, const torch::Tensor& predicted) override;
  /// Log density log p(y) for points y [P, 3] under each row's mixture: [B, P] (the probability map).
  torch::Tensor log_density(const torch::Tensor& logits, const torch::Tensor& points);
  /// Mixture weights averaged over an ensemble: [B, K].
  torch::Tensor weights(const std::vector<torch::Tensor>& raws);
  torch::Tensor means();  ///< [K, 3] unit vectors

 private:
  HeadOptions options_;
  torch::nn::Linear linear_{nullptr};
  torch::Tensor mu_raw_;     ///< [K, 3], normalised on use
  torch::Tensor log_kappa_;  ///< [K]
};

/// The registered head types (the table in location_heads.cpp), in the order error messages list them.
std::vector<std::string> head_types();
/// ConfigError `<key_path>: unknown head "x" (sphere, latlon_mse, vmf_mixture)` unless type is registered.
void check_head_type(const std::string& type, const std::string& key_path);
/// Builds a head by options.type. centres ([K, 3]) are needed by vmf_mixture only. Throws ConfigError.
std::shared_ptr<LocationHeadImpl> make_head(const HeadOptions& options, int64_t in, const torch::Tensor& centres);

/// Unit vectors [B, 3] -> (lat, lon) degrees [B, 2].
torch::Tensor unit_to_latlon(const torch::Tensor& v);
/// (lat, lon) degrees [B, 2] -> unit vectors [B, 3].
torch::Tensor latlon_to_unit(const torch::Tensor& latlon);

}  // namespace songlines::models
