// songlines: entry point. Turns exceptions into messages and exit statuses (0 ok, 1 failed, 2 usage).
// Linked into both binaries behind the entry point (cli/entry_point.h): the light one hands a command it does not
// hold to the full one.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "cli/command.h"
#include "cli/entry_point.h"
#include "core/error.h"
#include "core/heap_reuse.h"
#include "songlines/version.h"

namespace songlines::cli {

namespace {
std::vector<Command>& table() {
  static std::vector<Command> t;
  return t;
}

/// A command the full binary holds and this one does not (always false in the full binary).
bool held_by_full_binary_only(const std::string& name) {
  if (find_command(name)) return false;
  const auto table = full_binary_commands();
  return std::any_of(table.begin(), table.end(), [&](const CommandSummary& c) { return c.name == name; });
}

void print_overview() {
  std::cout << "songlines " << kVersion << " (" << git_revision()
            << "): learn where music comes from, make music for a place\n\n"
               "usage: songlines <command> [options]\n\ncommands:\n";
  std::vector<CommandSummary> lines;
  for (const auto& c : commands()) lines.push_back({c.name, c.summary});
  for (const auto& c : full_binary_commands())
    if (held_by_full_binary_only(std::string(c.name))) lines.push_back(c);
  std::sort(lines.begin(), lines.end(), [](const CommandSummary& a, const CommandSummary& b) { return a.name < b.name; });
  for (const auto& c : lines) {
    std::printf("  %-14s %s\n", std::string(c.name).c_str(), std::string(c.summary).c_str());
  }
  std::cout << "\n`songlines help <command>` explains one command. Exit status: 0 success, 1 the job failed, "
               "2 bad usage or config.\n";
}
// cxxopts names only the value it could not convert ("Argument 'abc' failed to parse"): find the option that
// took that value (`--jobs abc` or `--jobs=abc`), for a message a user can act on.
std::string describe_bad_value(const std::string& what, int argc, char** argv) {
  std::string value = what;
  const std::string head = "Argument ", tail = " failed to parse";
  if (value.rfind(head, 0) == 0) value = value.substr(head.size());
  if (value.size() >= tail.size() && value.compare(value.size() - tail.size(), tail.size(), tail) == 0)
    value.resize(value.size() - tail.size());
  for (const std::string q : {"\u2018", "'"})
    if (value.rfind(q, 0) == 0) value = value.substr(q.size());
  for (const std::string q : {"\u2019", "'"})
    if (value.size() >= q.size() && value.compare(value.size() - q.size(), q.size(), q) == 0)
      value.resize(value.size() - q.size());
  std::string options;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("-", 0) != 0) continue;
    const auto eq = a.find('=');
    const bool match = eq != std::string::npos ? a.substr(eq + 1) == value : (i + 1 < argc && argv[i + 1] == value);
    if (match) options += (options.empty() ? "" : " or ") + a.substr(0, eq);
  }
  return (options.empty() ? std::string("an option") : options) + ": \"" + value +
         "\" is not a valid value (expected a number, or true/false for a switch)";
}
std::string help_text(const Command& c, const cxxopts::Options& options) {
  std::string out = options.help() + "\n";
  if (!c.examples.empty()) {
    out += "Examples:\n";
    for (const auto& e : c.examples) out += "  " + e + "\n";
  }
  return out;
}
}  // namespace

bool register_command(Command command) {
  table().push_back(std::move(command));
  std::sort(table().begin(), table().end(), [](const Command& a, const Command& b) { return a.name < b.name; });
  return true;
}

const std::vector<Command>& commands() { return table(); }

const Command* find_command(const std::string& name) {
  for (const auto& c : table())
    if (c.name == name) return &c;
  return nullptr;
}

int dispatch(int argc, char** argv) {
  if (argc < 2) {
    print_overview();
    return static_cast<int>(ExitStatus::kUsage);
  }
  std::string name = argv[1];
  if (name == "--version" || name == "version") {
    std::cout << "songlines " << kVersion << " (" << git_revision() << ")\n";
    return 0;
  }
  if (name == "help" || name == "--help" || name == "-h") {
    if (argc >= 3) {
      if (held_by_full_binary_only(argv[2])) run_in_full_binary(argc, argv);
      const Command* c = find_command(argv[2]);
      if (!c) throw UsageError("unknown command \"" + std::string(argv[2]) + "\" (see `songlines help`)");
      std::cout << help_text(*c, c->options());
      return 0;
    }
    print_overview();
    return 0;
  }
  if (held_by_full_binary_only(name)) run_in_full_binary(argc, argv);
  const Command* c = find_command(name);
  if (!c) throw UsageError("unknown command \"" + name + "\" (see `songlines help`)");
  cxxopts::Options options = c->options();
  options.add_options("help")("h,help", "show this help");
  if (!c->positional.empty()) options.parse_positional(c->positional);
  // argv[1] is the command name; cxxopts treats argv[0] as the program name.
  cxxopts::ParseResult result;
  try {
    result = options.parse(argc - 1, argv + 1);
  } catch (const cxxopts::exceptions::incorrect_argument_type& e) {
    throw UsageError(name + " " + describe_bad_value(e.what(), argc, argv));
  }
  if (result.count("help")) {
    std::cout << help_text(*c, options);
    return 0;
  }
  if (!result.unmatched().empty()) throw UsageError(name + ": unexpected argument \"" + result.unmatched()[0] + "\"");
  if (wants_gpu_of_full_binary(result)) run_in_full_binary(argc, argv);
  return c->run(result);
}

}  // namespace songlines::cli

int main(int argc, char** argv) {
  using songlines::ExitStatus;
  // SONGLINES_DEFAULT_MALLOC=1 keeps glibc's defaults (for comparing; docs/benchmarks.md). A refused setting only
  // costs speed.
  if (const char* keep = std::getenv("SONGLINES_DEFAULT_MALLOC"); keep == nullptr || std::string(keep) != "1")
    songlines::reuse_freed_heap_memory();
  try {
    if (int status = 0; songlines::cli::run_internal_mode(argc, argv, &status)) return status;
    try {
      return songlines::cli::dispatch(argc, argv);
    } catch (const songlines::cli::HandOverToFullBinary&) {
      songlines::cli::run_in_full_binary(argc, argv);
    }
  } catch (const songlines::UsageError& e) {
    std::cerr << "songlines: " << e.what() << "\n";
    return static_cast<int>(ExitStatus::kUsage);
  } catch (const cxxopts::exceptions::exception& e) {
    std::cerr << "songlines: " << e.what() << "\n";
    return static_cast<int>(ExitStatus::kUsage);
  } catch (const std::exception& e) {
    std::cerr << "songlines: error: " << e.what() << "\n";
    return static_cast<int>(ExitStatus::kFailed);
  }
}
