// Each head's loss and its autograd gradient against central finite differences (float64).
#include <gtest/gtest.h>

#include "geo/great_circle.h"
#include "models/location_heads.h"
#include "support/test_support.h"

namespace songlines::models {
namespace {

torch::Tensor random_units(int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::nn::functional::normalize(torch::randn({n, 3}, torch::kFloat64),
                                          torch::nn::functional::NormalizeFuncOptions().dim(1));
}

// Gradient of head.loss(head.forward(x), y) w.r.t. x by autograd vs central differences.
void check_gradient(LocationHeadImpl& head, const char* what) {
  head.to(torch::kFloat64);
  torch::manual_seed(3);
  auto x = torch::randn({5, 4}, torch::kFloat64).requires_grad_(true);
  auto y = random_units(5, 11);
  head.loss(head.forward(x), y).backward();
  std::vector<double> analytic(x.grad().data_ptr<double>(), x.grad().data_ptr<double>() + x.numel());
  std::vector<double> numeric;
  const double h = 1e-6;
  torch::NoGradGuard guard;
  auto base = x.detach().clone();
  for (int64_t i = 0; i < base.numel(); ++i) {
    auto xp = base.clone(), xm = base.clone();
    xp.view(-1)[i] += h;
    xm.view(-1)[i] -= h;
    double lp = head.loss(head.forward(xp), y).item<double>(), lm = head.loss(head.forward(xm), y).item<double>();
    numeric.push_back((lp - lm) / (2 * h));
  }
  EXPECT_TRUE(testing::RelativeL2Near(analytic, numeric, 1e-5, what, 4));
}

TEST(Heads, SphereLossIsTheGreatCircleAngle) {
  SphereHeadImpl head(4);
  head.to(torch::kFloat64);
  geo::LatLon a{48.85, 2.35}, b{-33.87, 151.21};
  auto va = geo::to_unit_vector(a), vb = geo::to_unit_vector(b);
  auto p = torch::tensor({va[0], va[1], va[2]}, torch::kFloat64).view({1, 3});
  auto y = torch::tensor({vb[0], vb[1], vb[2]}, torch::kFloat64).view({1, 3});
  double km = head.loss(p, y).item<double>() * geo::kEarthRadiusKm;
  EXPECT_NEAR(km, geo::distance_km(a, b), 1e-3 * geo::distance_km(a, b));
  EXPECT_LT(head.loss(y, y).item<double>(), 1e-3);  // smoothed zero at coincidence
}

TEST(Heads, SphereGradientMatchesFiniteDifferences) {
  SphereHeadImpl head(4);
  check_gradient(head, "sphere dloss/dx");
}

TEST(Heads, LatLonMseGradientMatchesFiniteDifferences) {
  LatLonMseHeadImpl head(4);
  check_gradient(head, "latlon_mse dloss/dx");
}

TEST(Heads, VmfMixtureGradientMatchesFiniteDifferences) {
  HeadOptions o;
  o.type = "vmf_mixture";
  o.initial_kappa = 5;
  VmfMixtureHeadImpl head(4, random_units(6, 5).to(torch::kFloat32), o);
  check_gradient(head, "vmf_mixture dloss/dx");
}

TEST(Heads, VmfMixtureDensityIntegratesToOneAndModeFollowsWeights) {
  HeadOptions o;
  o.type = "vmf_mixture";
  o.initial_kappa = 20;
  auto centres = random_units(3, 7);
  VmfMixtureHeadImpl head(2, centres.to(torch::kFloat32), o);
  head.to(torch::kFloat64);
  // Integrate the density over a lat/lon grid (cell area cos(lat) dlat dlon).
  const int nlat = 360, nlon = 720;
  auto lat = (torch::arange(nlat, torch::kFloat64) + 0.5) * (180.0 / nlat) - 90.0;
  auto lon = (torch::arange(nlon, torch::kFloat64) + 0.5) * (360.0 / nlon) - 180.0;
  auto grid = torch::stack({lat.view({-1, 1}).expand({nlat, nlon}).reshape(-1),
                            lon.view({1, -1}).expand({nlat, nlon}).reshape(-1)}, 1);
  auto points = latlon_to_unit(grid);
  auto logits = torch::tensor({{2.0, 0.0, -1.0}}, torch::kFloat64);
  auto dens = torch::exp(head.log_density(logits, points)).view({nlat, nlon});
  double dA = (M_PI / nlat) * (2 * M_PI / nlon);
  double integral = (dens * torch::cos(lat * M_PI / 180.0).view({-1, 1})).sum().item<double>() * dA;
  EXPECT_NEAR(integral, 1.0, 1e-3);
  auto mode = head.predict({logits});
  EXPECT_TRUE(testing::MaxAbsNear({mode[0][0].item<double>(), mode[0][1].item<double>(), mode[0][2].item<double>()},
                                  {centres[0][0].item<double>(), centres[0][1].item<double>(), centres[0][2].item<double>()},
                                  1e-6, "mode = heaviest component"));
  EXPECT_GT(head.uncertainty_km({logits}, mode)[0].item<double>(), 0.0);
}

}  // namespace
}  // namespace songlines::models
