#include "geo/great_circle.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"

namespace songlines::geo {

namespace {
constexpr double kDegToRad = std::numbers::pi / 180.0;
constexpr double kRadToDeg = 180.0 / std::numbers::pi;

Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
double norm(const Vec3& a) { return std::sqrt(dot(a, a)); }
}  // namespace

Vec3 to_unit_vector(LatLon p) {
  double lat = p.lat * kDegToRad, lon = p.lon * kDegToRad;
  return {std::cos(lat) * std::cos(lon), std::cos(lat) * std::sin(lon), std::sin(lat)};
}

LatLon from_vector(const Vec3& v) {
  double n = norm(v);
  if (!(n > 0)) return {0, 0};
  double lat = std::asin(std::clamp(v[2] / n, -1.0, 1.0)) * kRadToDeg;
  double lon = std::atan2(v[1], v[0]) * kRadToDeg;
  if (lon <= -180.0) lon += 360.0;
  return {lat, lon};
}

double central_angle(LatLon a, LatLon b) {
  Vec3 u = to_unit_vector(a), v = to_unit_vector(b);
  return std::atan2(norm(cross(u, v)), dot(u, v));
}

double distance_km(LatLon a, LatLon b) { return kEarthRadiusKm * central_angle(a, b); }

LatLon interpolate(LatLon a, LatLon b, double t) {
  Vec3 u = to_unit_vector(a), v = to_unit_vector(b);
  double omega = central_angle(a, b);
  if (omega < 1e-12) return a;
  double s = std::sin(omega);
  if (s < 1e-12) {
    // Antipodes: the great circle is not unique; go through the point 90 degrees along any meridian-ish path.
    Vec3 axis = std::abs(u[2]) < 0.9 ? Vec3{0, 0, 1} : Vec3{1, 0, 0};
    Vec3 w = cross(cross(u, axis), u);
    double wn = norm(w);
    for (auto& x : w) x /= wn;
    double ang = t * std::numbers::pi;
    return from_vector({u[0] * std::cos(ang) + w[0] * std::sin(ang), u[1] * std::cos(ang) + w[1] * std::sin(ang),
                        u[2] * std::cos(ang) + w[2] * std::sin(ang)});
  }
  double wa = std::sin((1 - t) * omega) / s, wb = std::sin(t * omega) / s;
  return from_vector({wa * u[0] + wb * v[0], wa * u[1] + wb * v[1], wa * u[2] + wb * v[2]});
}

LatLon spherical_centroid(const LatLon* points, size_t n) {
  if (n == 0) throw Error("spherical_centroid: empty set of points");
  Vec3 s{0, 0, 0};
  for (size_t i = 0; i < n; ++i) {
    Vec3 v = to_unit_vector(points[i]);
    for (int k = 0; k < 3; ++k) s[k] += v[k];
  }
  return from_vector(s);
}

bool is_valid(LatLon p) {
  return std::isfinite(p.lat) && std::isfinite(p.lon) && p.lat >= -90 && p.lat <= 90 && p.lon >= -180 && p.lon <= 180;
}

}  // namespace songlines::geo
