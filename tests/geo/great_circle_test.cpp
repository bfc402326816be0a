#include "geo/great_circle.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "core/error.h"
#include <random>

namespace songlines::geo {
namespace {

TEST(GreatCircle, AntipodesAreHalfTheCircumference) {
  double half = std::numbers::pi * kEarthRadiusKm;
  EXPECT_NEAR(distance_km({0, 0}, {0, 180}), half, 1e-6);
  EXPECT_NEAR(distance_km({90, 0}, {-90, 0}), half, 1e-6);
  EXPECT_NEAR(distance_km({35.0, 139.0}, {-35.0, -41.0}), half, 1e-6);
}

TEST(GreatCircle, DateLineIsShortWay) {
  // 179.5E to 179.5W on the equator: one degree apart, not 359.
  double one_degree = kEarthRadiusKm * std::numbers::pi / 180.0;
  EXPECT_NEAR(distance_km({0, 179.5}, {0, -179.5}), one_degree, 1e-6);
}

TEST(GreatCircle, PolesIgnoreLongitude) {
  EXPECT_NEAR(distance_km({90, 10}, {90, -170}), 0.0, 1e-6);
  EXPECT_NEAR(distance_km({-90, 0}, {-89, 77}), kEarthRadiusKm * std::numbers::pi / 180.0, 1e-6);
}

TEST(GreatCircle, KnownCityPair) {
  // London (51.5074, -0.1278) to Paris (48.8566, 2.3522): ~343.5 km on this sphere.
  EXPECT_NEAR(distance_km({51.5074, -0.1278}, {48.8566, 2.3522}), 343.5, 0.5);
}

TEST(GreatCircle, VectorRoundTripAndInterpolationStaysOnPath) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> lat(-89, 89), lon(-180, 180), t(0, 1);
  for (int i = 0; i < 200; ++i) {
    LatLon a{lat(rng), lon(rng)}, b{lat(rng), lon(rng)};
    LatLon r = from_vector(to_unit_vector(a));
    EXPECT_NEAR(distance_km(a, r), 0.0, 1e-6);
    double f = t(rng);
    LatLon m = interpolate(a, b, f);
    double d = distance_km(a, b);
    EXPECT_NEAR(distance_km(a, m), f * d, 1e-6 * std::max(1.0, d));
    EXPECT_NEAR(distance_km(m, b), (1 - f) * d, 1e-6 * std::max(1.0, d));
  }
}

TEST(GreatCircle, CentroidOfSymmetricPointsIsTheirMiddle) {
  LatLon pts[] = {{10, 20}, {-10, 20}};
  LatLon c = spherical_centroid(pts, 2);
  EXPECT_NEAR(c.lat, 0, 1e-9);
  EXPECT_NEAR(c.lon, 20, 1e-9);
  EXPECT_THROW(spherical_centroid(pts, 0), Error);
}

}  // namespace
}  // namespace songlines::geo
