// Great-circle geometry on a sphere of radius 6371.0088 km (docs/location-model.md). Degrees in, latitude first.
#pragma once

#include <array>
#include <cstddef>

namespace songlines::geo {

/// Mean Earth radius (IUGG), km.
inline constexpr double kEarthRadiusKm = 6371.0088;

struct LatLon {
  double lat = 0;  ///< degrees, [-90, 90]
  double lon = 0;  ///< degrees, any range (wrapped where needed)
};

using Vec3 = std::array<double, 3>;

/// Unit vector of a point: x toward (0,0), z toward the north pole.
Vec3 to_unit_vector(LatLon p);
/// Inverse of to_unit_vector; v need not be normalised (the zero vector gives (0,0)). lon in (-180, 180].
LatLon from_vector(const Vec3& v);
/// Great-circle distance in km (haversine-stable formula via atan2 of cross and dot products).
double distance_km(LatLon a, LatLon b);
/// Central angle in radians.
double central_angle(LatLon a, LatLon b);
/// The point a fraction t in [0,1] of the way from a to b along the great circle (slerp).
LatLon interpolate(LatLon a, LatLon b, double t);
/// Spherical mean (normalised vector sum) of points; throws on an empty set.
LatLon spherical_centroid(const LatLon* points, size_t n);
/// True when lat in [-90,90] and lon in [-180,180] and both finite.
bool is_valid(LatLon p);

}  // namespace songlines::geo
