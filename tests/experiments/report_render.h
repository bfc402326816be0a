// Shared by the experiments tests: reading a text file, and rendering a report in headless Chromium (the DOM
// after scripts ran, console errors, an optional screenshot).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "support/test_support.h"

namespace songlines::runs {

inline std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Browser {
  bool ok = false;
  std::string dom, log;
};

inline Browser render_in_chromium(const std::filesystem::path& html, const std::filesystem::path& png) {
  Browser b;
  const std::string flags = "--headless --no-sandbox --disable-gpu --enable-logging=stderr --v=0 ";
  auto shot = testing::run_command("timeout 120 chromium " + flags + "--screenshot='" + png.string() +
                                   "' --window-size=1400,2000 'file://" + html.string() + "'");
  auto dom = testing::run_command("timeout 120 chromium " + flags + "--dump-dom 'file://" + html.string() + "'");
  b.ok = shot.exit_code == 0 && dom.exit_code == 0;
  b.dom = dom.output;
  b.log = shot.output + dom.output;
  return b;
}

inline bool have_chromium() { return testing::run_command("command -v chromium").exit_code == 0; }

inline void expect_clean_render(const std::filesystem::path& html, const std::filesystem::path& png, bool screenshot) {
  auto b = render_in_chromium(html, png);
  ASSERT_TRUE(b.ok) << b.log;
  EXPECT_NE(b.dom.find("id=\"report-ready\""), std::string::npos) << b.dom.substr(b.dom.size() > 3000 ? b.dom.size() - 3000 : 0);
  EXPECT_EQ(b.dom.find("id=\"report-error\""), std::string::npos);
  EXPECT_EQ(b.log.find("Uncaught"), std::string::npos) << b.log;
  EXPECT_EQ(b.log.find("ERROR:CONSOLE"), std::string::npos) << b.log;
  if (screenshot) {
    ASSERT_TRUE(std::filesystem::exists(png)) << b.log;
    EXPECT_GT(std::filesystem::file_size(png), 50'000u) << "a blank 1400x2000 page compresses far below this";
  }
}

}  // namespace songlines::runs
