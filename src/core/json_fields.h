// One field list per options struct. A struct names each of its JSON keys once, in a static member template
//
//   template <class S, class V>
//   static void fields(S& s, V& v) {          // S: the struct or const struct; V: FieldReader or FieldWriter
//     v("n_fft", s.n_fft);                    // a value: number, string, bool, vector, optional, Json
//     v("shards", s.shards, kRequired);       // a key that must be present
//     v("warmup_steps", s.warmup_steps, kOmitDefault);  // written only when not the struct's default
//     v("head", s.head);                      // a nested struct with its own fields: its own JSON object
//     v("places", s.places);                  // a vector of such structs: an array of objects
//     v.text("precision", s.precision, &to_string, &parse_precision);  // a value written as text (an enum)
//     v.group("data", [&](auto& d) { d("feature", s.feature); });     // a JSON object of this struct's fields
//     v.ignore("type");                       // a key that is accepted and never written
//   }
//
// and one pair of functions reads and writes every such struct: fields_from_json is strict (an unknown key is
// a ConfigError naming its path and the known keys, a wrong type names the path and both types, core/config.h),
// keeps the struct's defaults for absent keys, and then calls the struct's `void validate(const std::string&
// path) const` when it has one (its range checks, naming "path.key"); fields_to_json writes every field but
// the kOmitDefault ones that equal a default-constructed struct's (a key added later leaves the JSON, and so
// the identity, of run directories written before it unchanged). A
// nested struct is read and validated the same way under its key's path. Why not nlohmann's
// NLOHMANN_DEFINE_TYPE_*_WITH_DEFAULT: in 3.11 they ignore unknown keys and name no path in errors.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/config.h"

namespace songlines {

/// Whether a key must be present in the JSON, and whether it is written when it holds the default.
enum class Presence {
  kOptional,     ///< may be absent (the default is kept); always written
  kRequired,     ///< must be present; always written
  kOmitDefault,  ///< may be absent; written only when it differs from the default-constructed struct's value
};
inline constexpr Presence kRequired = Presence::kRequired;
inline constexpr Presence kOmitDefault = Presence::kOmitDefault;

/// "path.key", or "key" at the root (path "").
inline std::string key_path(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

class FieldReader;
class FieldWriter;

template <class T>
inline constexpr bool kIsOptional = false;
template <class U>
inline constexpr bool kIsOptional<std::optional<U>> = true;

/// A struct with a field list (see the top of this file).
template <class T>
concept HasFields = requires(T& t, FieldReader& r) { T::fields(t, r); };

template <class T>
inline constexpr bool kIsVectorOfFields = false;
template <HasFields U>
inline constexpr bool kIsVectorOfFields<std::vector<U>> = true;

/// Reads o's fields from r (without r.finish() or validation: r may hold other keys, read by the caller).
template <class T>
void read_fields(ConfigReader& r, T& o);
/// Calls o.validate(path) when T has one.
template <class T>
void validate_fields(const T& o, const std::string& path);
/// Adds o's fields to the object j; defaults: the fields of T{} (to leave out kOmitDefault keys), or null to
/// write every key.
template <class T>
void write_fields(const T& o, Json& j, const Json* defaults = nullptr);
/// Strict parse of j (path: its dotted path in messages, "" at the root): defaults for absent keys, ConfigError
/// for unknown keys and wrong types, then o.validate(path) when T has one. A null j reads as {}.
template <class T>
T fields_from_json(const Json& j, const std::string& path);
/// Every field of o as a JSON object (kOmitDefault keys only when they differ from the default).
template <class T>
Json fields_to_json(const T& o);

class FieldReader {
 public:
  explicit FieldReader(ConfigReader& r) : r_(r) {}

  template <class T>
  void operator()(const std::string& key, T& field, Presence presence = Presence::kOptional) {
    if (presence == Presence::kRequired && !r_.has(key)) throw ConfigError(r_.join(key) + ": missing required key");
    if constexpr (HasFields<T>) {
      ConfigReader c = r_.child(key);  // absent or null: {}; not an object: ConfigError naming the key's path
      read_fields(c, field);
      c.finish();
      validate_fields(field, c.path());
    } else if constexpr (kIsVectorOfFields<T>) {
      const Json& list = r_.raw(key);  // marks key as known
      if (!r_.has(key)) return;
      if (!list.is_array()) throw ConfigError(r_.join(key) + ": expected array, got " + json_type_name(list));
      T out;
      for (size_t i = 0; i < list.size(); ++i) {
        const std::string where = r_.join(key) + "[" + std::to_string(i) + "]";
        ConfigReader c(list[i], where);
        read_fields(c, out.emplace_back());
        c.finish();
        validate_fields(out.back(), where);
      }
      field = std::move(out);
    } else {
      r_.read(key, field);
    }
  }

  /// A value held as text in JSON: to names the current value (the default), from parses a text (ConfigError
  /// naming key_path for an unknown one).
  template <class E>
  void text(const std::string& key, E& field, std::string (*to)(E),
            E (*from)(const std::string& text, const std::string& key_path)) {
    std::string t = to(field);
    r_.read(key, t);
    field = from(t, r_.join(key));
  }

  /// Keys of a JSON object under key that belong to this struct (body gets a FieldReader of that object).
  template <class Body>
  void group(const std::string& key, Body&& body) {
    ConfigReader c = r_.child(key);
    FieldReader g(c);
    body(g);
    c.finish();
  }

  void ignore(const std::string& key) { r_.accept(key); }

 private:
  ConfigReader& r_;
};

class FieldWriter {
 public:
  /// defaults: the same object written from a default-constructed struct (null: write every key).
  explicit FieldWriter(Json& j, const Json* defaults = nullptr) : j_(j), defaults_(defaults) {}

  template <class T>
  void operator()(const std::string& key, const T& field, Presence presence = Presence::kOptional) {
    Json value;
    if constexpr (HasFields<T>) {
      value = fields_to_json(field);
    } else if constexpr (kIsVectorOfFields<T>) {
      value = Json::array();
      for (const auto& e : field) value.push_back(fields_to_json(e));
    } else if constexpr (kIsOptional<T>) {
      value = field ? Json(*field) : Json(nullptr);
    } else {
      value = field;
    }
    if (presence == Presence::kOmitDefault && defaults_ && defaults_->contains(key) && defaults_->at(key) == value)
      return;
    j_[key] = std::move(value);
  }

  template <class E>
  void text(const std::string& key, const E& field, std::string (*to)(E),
            E (*)(const std::string&, const std::string&)) {
    j_[key] = to(field);
  }

  template <class Body>
  void group(const std::string& key, Body&& body) {
    Json g = Json::object();
    const Json* group_defaults = defaults_ && defaults_->contains(key) ? &defaults_->at(key) : nullptr;
    FieldWriter w(g, group_defaults);
    body(w);
    j_[key] = std::move(g);
  }

  void ignore(const std::string&) {}

 private:
  Json& j_;
  const Json* defaults_;
};

template <class T>
void read_fields(ConfigReader& r, T& o) {
  FieldReader v(r);
  T::fields(o, v);
}

template <class T>
void validate_fields(const T& o, const std::string& path) {
  if constexpr (requires { o.validate(path); }) o.validate(path);
}

template <class T>
void write_fields(const T& o, Json& j, const Json* defaults) {
  FieldWriter v(j, defaults);
  T::fields(o, v);
}

template <class T>
T fields_from_json(const Json& j, const std::string& path) {
  T o;
  ConfigReader r(j, path);
  read_fields(r, o);
  r.finish();
  validate_fields(o, path);
  return o;
}

template <class T>
Json fields_to_json(const T& o) {
  Json defaults = Json::object();
  write_fields(T{}, defaults);
  Json j = Json::object();
  write_fields(o, j, &defaults);
  return j;
}

}  // namespace songlines
