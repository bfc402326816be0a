#include "geo/gazetteer.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "support/test_support.h"

#include <fstream>

namespace songlines::geo {
namespace {

TEST(Gazetteer, BuiltinLooksUpByCodesAndNames) {
  const auto& g = Gazetteer::builtin();
  EXPECT_GT(g.size(), 240u);
  const Country* fr = g.find_by_iso2("fr");
  ASSERT_NE(fr, nullptr);
  EXPECT_EQ(fr->iso3, "FRA");
  EXPECT_EQ(fr->capital, "Paris");
  EXPECT_NEAR(fr->capital_coords.lat, 48.87, 0.05);
  EXPECT_NEAR(fr->capital_coords.lon, 2.33, 0.05);
  EXPECT_EQ(g.find_by_iso3("JPN"), g.find_by_name("japan"));
  ASSERT_NE(g.find_by_name("United States of America"), nullptr);  // official name; quoted capital field
  EXPECT_EQ(g.find_by_name("United States of America")->capital, "Washington, D.C.");
  EXPECT_EQ(g.find_by_iso2("XX"), nullptr);
  EXPECT_EQ(g.find_by_name("Atlantis"), nullptr);
}

TEST(Gazetteer, NearestCapitalAndSubset) {
  const auto& g = Gazetteer::builtin();
  EXPECT_EQ(g.nearest({48.80, 2.40}).iso2, "FR");          // near Paris
  EXPECT_EQ(g.nearest({-35.2, 149.0}).iso2, "AU");         // Canberra
  EXPECT_EQ(g.nearest({35.7, 139.7}).iso2, "JP");          // Tokyo
  // Among a subset, Lyon is nearer to Rome than to Tokyo.
  EXPECT_EQ(g.nearest({45.76, 4.84}, {"JP", "IT", "??"}).iso2, "IT");
  EXPECT_THROW(g.nearest({0, 0}, {"??"}), Error);
}

TEST(Gazetteer, TerritoryWithoutCapitalUsesCentre) {
  const Country* aq = Gazetteer::builtin().find_by_iso2("AQ");
  ASSERT_NE(aq, nullptr);
  EXPECT_FALSE(aq->has_capital);
  EXPECT_DOUBLE_EQ(aq->capital_coords.lat, aq->centre.lat);
}

TEST(Gazetteer, MalformedTableNamesFileAndLine) {
  testing::TempDir dir;
  auto path = dir / "c.csv";
  std::ofstream(path) << "cca2,cca3,name,capital,capital_lat,capital_lon,center_lat,center_lon\n"
                         "FR,FRA,France,Paris,48.87,2.33,46,2\n"
                         "XX,XXX,Nowhere,Nope,abc,1,2,3\n";
  try {
    Gazetteer::load(path);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("c.csv:3"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("abc"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace songlines::geo
