// Every command's help, run through the binary (about 50 processes, ~30 s on 2 cores: label slow).
#include <gtest/gtest.h>

#include <sstream>
#include <vector>

#include "support/test_support.h"

namespace songlines::cli {
namespace {

// Every command's help ends with examples, and every example parses with that command's own options (run with
// --help appended, the parser checks every option and value, then prints help instead of running).
TEST(Help, EveryCommandHasExamplesThatParse) {
  auto overview = testing::run_songlines("help");
  ASSERT_EQ(overview.exit_code, 0) << overview.output;
  std::vector<std::string> names;
  std::istringstream lines(overview.output.substr(overview.output.find("commands:")));
  std::string line;
  std::getline(lines, line);
  while (std::getline(lines, line) && line.rfind("  ", 0) == 0) names.push_back(line.substr(2, line.find(' ', 2) - 2));
  ASSERT_GE(names.size(), 12u) << overview.output;
  for (const auto& name : names) {
    SCOPED_TRACE(name);
    auto help = testing::run_songlines("help " + name);
    ASSERT_EQ(help.exit_code, 0) << help.output;
    const auto at = help.output.find("Examples:\n");
    ASSERT_NE(at, std::string::npos) << help.output;
    std::istringstream ex(help.output.substr(at + 10));
    int examples = 0;
    while (std::getline(ex, line) && line.rfind("  songlines " + name, 0) == 0) {
      ++examples;
      auto parsed = testing::run_songlines(line.substr(12) + " --help");
      EXPECT_EQ(parsed.exit_code, 0) << line << "\n" << parsed.output;
    }
    EXPECT_GE(examples, 1) << help.output;
  }
}

}  // namespace
}  // namespace songlines::cli
