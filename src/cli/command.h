// The subcommand table of the `songlines` binary. Each command lives in cmd_<name>.cpp and registers itself
// with SONGLINES_REGISTER_COMMAND; its cxxopts::Options are the single source of its help text.
#pragma once

#include <cxxopts.hpp>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/path_rule.h"

namespace songlines::cli {

struct Command {
  std::string name;
  std::string summary;  ///< one line for `songlines help`
  /// Builds the parser: options, groups, positional names and a custom usage line. Also the help text.
  std::function<cxxopts::Options()> options;
  /// Runs the command on parsed options; returns the exit status (see core/error.h ExitStatus).
  std::function<int(const cxxopts::ParseResult&)> run;
  /// Names of positional arguments (passed to parse_positional), optional.
  std::vector<std::string> positional;
  /// Example command lines, printed under the options by `songlines help CMD` (each starts "songlines CMD";
  /// tests parse every one with the command's own parser, so they cannot drift from the options).
  std::vector<std::string> examples;
};

bool register_command(Command command);
const std::vector<Command>& commands();
const Command* find_command(const std::string& name);

/// Every `--set key=value` in command-line order, path values made absolute against the working directory
/// (override_with_absolute_paths). Declare the option as cxxopts::value<std::string>() (not a
/// vector: cxxopts splits vector values at commas, which broke `--set model.channels=[16,32,64]`).
inline std::vector<std::string> set_overrides(const cxxopts::ParseResult& args) {
  std::vector<std::string> out;
  for (const auto& kv : args.arguments())
    if (kv.key() == "set") out.push_back(override_with_absolute_paths(kv.value(), std::filesystem::current_path()));
  return out;
}

}  // namespace songlines::cli

#define SONGLINES_CONCAT_INNER(a, b) a##b
#define SONGLINES_CONCAT(a, b) SONGLINES_CONCAT_INNER(a, b)
#define SONGLINES_REGISTER_COMMAND(...) \
  static const bool SONGLINES_CONCAT(songlines_command_registered_, __COUNTER__) = ::songlines::cli::register_command(__VA_ARGS__)
