#include "core/json_fields.h"

#include <gtest/gtest.h>

namespace songlines {
namespace {

enum class Shape { kRound, kSquare };
std::string shape_name(Shape s) { return s == Shape::kRound ? "round" : "square"; }
Shape parse_shape(const std::string& text, const std::string& key_path) {
  if (text == "round") return Shape::kRound;
  if (text == "square") return Shape::kSquare;
  throw ConfigError(key_path + ": expected \"round\" or \"square\", got \"" + text + "\"");
}

struct FieldsTestPoint {
  std::string name;
  double x = 0;
  template <class S, class V>
  static void fields(S& s, V& v) {
    v("name", s.name, kRequired);
    v("x", s.x);
  }
  void validate(const std::string& path) const {
    if (x < 0) throw ConfigError(key_path(path, "x") + ": must be >= 0");
  }
};

struct FieldsTestInner {
  int width = 4;
  std::optional<double> tuning;
  template <class S, class V>
  static void fields(S& s, V& v) {
    v("width", s.width);
    v("tuning", s.tuning);
  }
  void validate(const std::string& path) const {
    if (width < 1) throw ConfigError(key_path(path, "width") + ": must be >= 1, got " + std::to_string(width));
  }
};

struct FieldsTestOuter {
  std::vector<int> sizes{256, 128};
  uint64_t seed = 3;
  Shape shape = Shape::kRound;
  FieldsTestInner inner;
  std::string data_path = "a";  // under "data"
  int data_limit = 0;           // under "data"
  std::vector<FieldsTestPoint> points;
  template <class S, class V>
  static void fields(S& s, V& v) {
    v.ignore("comment");
    v("sizes", s.sizes);
    v("seed", s.seed);
    v.text("shape", s.shape, &shape_name, &parse_shape);
    v("inner", s.inner);
    v.group("data", [&](auto& d) {
      d("path", s.data_path);
      d("limit", s.data_limit);
    });
    v("points", s.points);
  }
};

// A struct with keys written only when they are not its defaults (kOmitDefault), at the top and in a group.
struct FieldsTestLater {
  int steps = 10;
  std::string schedule = "constant";  // a key added later: absent from the JSON while it holds the default
  std::vector<std::string> extra;     // under "data", likewise
  template <class S, class V>
  static void fields(S& s, V& v) {
    v("steps", s.steps);
    v("schedule", s.schedule, kOmitDefault);
    v.group("data", [&](auto& d) { d("extra", s.extra, kOmitDefault); });
  }
};

std::string error_of(const Json& j, const std::string& path = "cfg") {
  try {
    fields_from_json<FieldsTestOuter>(j, path);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(JsonFields, AbsentKeysKeepDefaultsAndPresentOnesAreRead) {
  auto o = fields_from_json<FieldsTestOuter>(
      Json::parse(R"({"seed": 9, "shape": "square", "inner": {"tuning": 0.25}, "data": {"limit": 5},
                      "points": [{"name": "p", "x": 2}], "comment": "ignored"})"),
      "cfg");
  EXPECT_EQ(o.sizes, (std::vector<int>{256, 128}));
  EXPECT_EQ(o.seed, 9u);
  EXPECT_EQ(o.shape, Shape::kSquare);
  EXPECT_EQ(o.inner.width, 4);
  ASSERT_TRUE(o.inner.tuning.has_value());
  EXPECT_DOUBLE_EQ(*o.inner.tuning, 0.25);
  EXPECT_EQ(o.data_path, "a");
  EXPECT_EQ(o.data_limit, 5);
  ASSERT_EQ(o.points.size(), 1u);
  EXPECT_EQ(o.points[0].name, "p");
  EXPECT_DOUBLE_EQ(o.points[0].x, 2.0);
}

TEST(JsonFields, UnknownKeysAreRejectedWithTheirFullPath) {
  EXPECT_NE(error_of(Json::parse(R"({"sedd": 1})")).find("cfg: unknown key \"sedd\""), std::string::npos);
  EXPECT_NE(error_of(Json::parse(R"({"inner": {"widht": 1}})")).find("cfg.inner: unknown key \"widht\""),
            std::string::npos);
  EXPECT_NE(error_of(Json::parse(R"({"data": {"paht": "b"}})")).find("cfg.data: unknown key \"paht\""),
            std::string::npos);
  EXPECT_NE(error_of(Json::parse(R"({"points": [{"name": "p"}, {"name": "q", "y": 1}]})"))
                .find("cfg.points[1]: unknown key \"y\""),
            std::string::npos);
  // At the root the message says "config".
  EXPECT_NE(error_of(Json::parse(R"({"sedd": 1})"), "").find("config: unknown key \"sedd\" (known:"),
            std::string::npos);
}

TEST(JsonFields, WrongTypesNameThePathAndBothTypes) {
  EXPECT_NE(error_of(Json::parse(R"({"sizes": [1, "two"]})")).find("cfg.sizes[1]: expected integer, got string"),
            std::string::npos);
  EXPECT_NE(error_of(Json::parse(R"({"inner": 3})")).find("cfg.inner: expected object, got integer"),
            std::string::npos);
  EXPECT_NE(error_of(Json::parse(R"({"points": {}})")).find("cfg.points: expected array, got object"),
            std::string::npos);
  EXPECT_NE(error_of(Json::parse(R"({"seed": -1})")).find("cfg.seed: expected non-negative integer"),
            std::string::npos);
  EXPECT_NE(error_of(Json::parse(R"({"shape": "oval"})")).find("cfg.shape: expected \"round\" or \"square\""),
            std::string::npos);
}

TEST(JsonFields, RequiredKeysAndNestedValidationNameTheirPath) {
  EXPECT_NE(error_of(Json::parse(R"({"points": [{"x": 1}]})")).find("cfg.points[0].name: missing required key"),
            std::string::npos);
  EXPECT_NE(error_of(Json::parse(R"({"points": [{"name": "p", "x": -1}]})")).find("cfg.points[0].x: must be >= 0"),
            std::string::npos);
  EXPECT_NE(error_of(Json::parse(R"({"inner": {"width": 0}})")).find("cfg.inner.width: must be >= 1, got 0"),
            std::string::npos);
}

TEST(JsonFields, WritingListsEveryFieldAndReadsBackToTheSameJson) {
  FieldsTestOuter o;
  o.shape = Shape::kSquare;
  o.inner.width = 7;
  o.points = {{"p", 1.5}};
  const Json j = fields_to_json(o);
  EXPECT_EQ(j, Json::parse(R"({"sizes": [256, 128], "seed": 3, "shape": "square",
                               "inner": {"width": 7, "tuning": null}, "data": {"path": "a", "limit": 0},
                               "points": [{"name": "p", "x": 1.5}]})"))
      << j.dump();
  EXPECT_EQ(fields_to_json(fields_from_json<FieldsTestOuter>(j, "cfg")), j);
}

TEST(JsonFields, OmitDefaultKeysAreWrittenOnlyWhenSet) {
  FieldsTestLater o;
  EXPECT_EQ(fields_to_json(o), Json::parse(R"({"steps": 10, "data": {}})"));
  o.schedule = "cosine";
  o.extra = {"x"};
  const Json j = fields_to_json(o);
  EXPECT_EQ(j, Json::parse(R"({"steps": 10, "schedule": "cosine", "data": {"extra": ["x"]}})"));
  const auto back = fields_from_json<FieldsTestLater>(j, "cfg");
  EXPECT_EQ(back.schedule, "cosine");
  EXPECT_EQ(back.extra, std::vector<std::string>{"x"});
  // Read like any optional key: absent keeps the default, present is read even when it equals it.
  EXPECT_EQ(fields_from_json<FieldsTestLater>(Json::parse(R"({"schedule": "constant"})"), "cfg").schedule, "constant");
}

TEST(JsonFields, NullNestedStructReadsAsItsDefaults) {
  // As ConfigReader::child: a null section is an empty one (the run configs' sections have always read so).
  const auto o = fields_from_json<FieldsTestOuter>(Json::parse(R"({"inner": null, "data": null})"), "cfg");
  EXPECT_EQ(o.inner.width, 4);
  EXPECT_EQ(o.data_path, "a");
}

}  // namespace
}  // namespace songlines
