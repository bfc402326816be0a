// Strict JSON configs mapped onto options structs. Every key read is recorded; finish() rejects keys that
// nothing read, naming their path (`model.hidden_sizes: unknown key "hiden"`), and a wrong type names the
// path and both types. Used by experiment configs, the crawler config and --set overrides.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"

namespace songlines {

using Json = nlohmann::json;

/// Name of a JSON value's type for messages ("number", "string", ...).
std::string json_type_name(const Json& j);

class ConfigReader {
 public:
  /// path: dotted prefix used in messages ("" at the root, "model" for a section).
  ConfigReader(const Json& j, std::string path);

  /// Reads an optional key into field (left unchanged when absent). Throws ConfigError on a wrong type.
  template <class T>
  void read(const std::string& key, T& field) {
    seen_.insert(key);
    if (!j_.contains(key)) return;
    field = convert<T>(j_.at(key), join(key));
  }
  /// Reads a key that must be present.
  template <class T>
  void require(const std::string& key, T& field) {
    if (!j_.contains(key)) throw ConfigError(join(key) + ": missing required key");
    read(key, field);
  }
  bool has(const std::string& key) const { return j_.contains(key); }
  /// A sub-object reader (an absent key gives an empty object). Its own finish() must be called.
  ConfigReader child(const std::string& key);
  /// Marks a key as known without reading it (for sections parsed elsewhere).
  void accept(const std::string& key) { seen_.insert(key); }
  /// The raw value (after marking it seen); null when absent.
  const Json& raw(const std::string& key);
  /// Throws ConfigError naming the first key that was never read.
  void finish() const;
  const std::string& path() const { return path_; }
  std::string join(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

  template <class T>
  static T convert(const Json& v, const std::string& where);

 private:
  Json j_;
  std::string path_;
  std::set<std::string> seen_;
};

/// Applies `a.b.c=value` to a JSON object; value is parsed as JSON when it parses, else taken as a string.
/// Throws UsageError when the assignment is malformed.
void apply_override(Json& root, const std::string& assignment);

/// Reads and parses a JSON file; ConfigError names the file and the parse position.
Json load_json_file(const std::string& path);

/// Writes JSON to path atomically (temporary name, then rename).
void write_json_file_atomic(const std::string& path, const Json& j, int indent = 2);

// ---- conversions ----------------------------------------------------------------------------------------
template <class T>
T ConfigReader::convert(const Json& v, const std::string& where) {
  auto fail = [&](const char* want) {
    return ConfigError(where + ": expected " + want + ", got " + json_type_name(v) + " " + v.dump());
  };
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) throw fail("boolean");
    return v.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    if (!v.is_number_integer() && !(v.is_number_float() && v.get<double>() == static_cast<double>(static_cast<long long>(v.get<double>()))))
      throw fail("integer");
    long long x = v.is_number_integer() ? v.get<long long>() : static_cast<long long>(v.get<double>());
    if constexpr (std::is_unsigned_v<T>) {
      if (x < 0) throw fail("non-negative integer");
    }
    return static_cast<T>(x);
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!v.is_number()) throw fail("number");
    return v.get<T>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) throw fail("string");
    return v.get<std::string>();
  } else if constexpr (std::is_same_v<T, Json>) {
    return v;
  } else {
    // std::vector<U> and std::optional<U>
    using U = typename T::value_type;
    if constexpr (std::is_same_v<T, std::optional<U>>) {
      if (v.is_null()) return std::nullopt;
      return convert<U>(v, where);
    } else {
      if (!v.is_array()) throw fail("array");
      T out;
      for (size_t i = 0; i < v.size(); ++i) out.push_back(convert<U>(v[i], where + "[" + std::to_string(i) + "]"));
      return out;
    }
  }
}

}  // namespace songlines
