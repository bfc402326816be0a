// The songlines binary's own argument handling (src/cli/main.cpp).
#include <gtest/gtest.h>

#include "support/test_support.h"

namespace songlines::cli {
namespace {

// cxxopts reports "Argument 'abc' failed to parse" and nothing else: the message must name the option.
TEST(ArgumentErrors, AValueOfTheWrongTypeNamesItsOption) {
  for (const std::string spelling : {"--jobs abc", "--jobs=abc"}) {
    auto r = testing::run_songlines("extract --input x.wav --output out " + spelling);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("extract --jobs: \"abc\" is not a valid value"), std::string::npos) << r.output;
  }
  auto g = testing::run_songlines("generate --model m --output o.wav --lat 1 --lon x2");
  EXPECT_EQ(g.exit_code, 2) << g.output;
  EXPECT_NE(g.output.find("--lon: \"x2\""), std::string::npos) << g.output;
}

// --jobs beyond 4 per hardware thread only costs memory (it once started 1000 threads): refused, naming --jobs.
TEST(ArgumentErrors, ExtractRefusesAbsurdJobCounts) {
  for (const char* jobs : {"1000", "-1"}) {
    auto r = testing::run_songlines(std::string("extract --input x.wav --output out --jobs ") + jobs);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("extract --jobs: must be 0 (every core) to"), std::string::npos) << r.output;
  }
}

}  // namespace
}  // namespace songlines::cli
