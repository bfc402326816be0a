// The Last.fm API key: where it comes from and how it is kept out of every log, error, cache key and output.
#pragma once

#include <filesystem>
#include <string>

namespace songlines::collect {

/// LASTFM_API_KEY from the environment, else a `LASTFM_API_KEY=...` line of <dir>/.env (quotes stripped,
/// `export ` prefix allowed). Throws UsageError, before any request is made, when neither has a key.
std::string load_lastfm_api_key(const std::filesystem::path& dotenv_dir = std::filesystem::current_path());

/// text with every `api_key=<value>` query value and every literal occurrence of secret replaced by "***".
std::string mask_secret(std::string text, const std::string& secret);

}  // namespace songlines::collect
