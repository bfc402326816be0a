#include "collect/api_key.h"

#include <cstdlib>
#include <fstream>

#include "core/error.h"

namespace songlines::collect {
namespace {

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
  return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

}  // namespace

std::string load_lastfm_api_key(const std::filesystem::path& dotenv_dir) {
  if (const char* env = std::getenv("LASTFM_API_KEY"); env && !trim(env).empty()) return trim(env);
  std::ifstream in(dotenv_dir / ".env");
  std::string line;
  while (in && std::getline(in, line)) {
    line = trim(line);
    if (line.rfind("export ", 0) == 0) line = trim(line.substr(7));
    const std::string name = "LASTFM_API_KEY";
    if (line.rfind(name, 0) != 0) continue;
    std::string rest = trim(line.substr(name.size()));
    if (rest.empty() || rest[0] != '=') continue;
    std::string value = trim(rest.substr(1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
      value = value.substr(1, value.size() - 2);
    if (!value.empty()) return value;
  }
  throw UsageError(
      "collect: no Last.fm API key: set LASTFM_API_KEY in the environment or put LASTFM_API_KEY=<key> in " +
      (dotenv_dir / ".env").string() + " (get one at https://www.last.fm/api/account/create)");
}

std::string mask_secret(std::string text, const std::string& secret) {
  const std::string param = "api_key=";
  for (size_t pos = text.find(param); pos != std::string::npos; pos = text.find(param, pos + param.size())) {
    size_t start = pos + param.size();
    size_t end = text.find_first_of("&# \t\r\n\"'", start);
    if (end == std::string::npos) end = text.size();
    if (text.compare(start, end - start, "***") != 0) text.replace(start, end - start, "***");
  }
  if (!secret.empty())
    for (size_t pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos + 3))
      text.replace(pos, secret.size(), "***");
  return text;
}

}  // namespace songlines::collect
