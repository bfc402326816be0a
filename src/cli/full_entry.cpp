// The full binary's side of the entry point (cli/entry_point.h): it holds every command, hands nothing over,
// and writes the command table the light binary is built with.
#include <string>

#include "cli/command.h"
#include "cli/entry_point.h"
#include "core/atomic_file.h"
#include "core/error.h"

namespace songlines::cli {

namespace {

/// s as a C++ string literal; bytes outside printable ASCII as octal escapes, so any text survives.
std::string cpp_literal(const std::string& s) {
  std::string out = "\"";
  for (const unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      const char digits[] = {'\\', static_cast<char>('0' + (c >> 6)), static_cast<char>('0' + ((c >> 3) & 7)),
                             static_cast<char>('0' + (c & 7)), '\0'};
      out += digits;
    }
  }
  return out + "\"";
}

std::string command_table_source() {
  std::string out =
      "// Generated at build time by `songlines-full __write-command-table` (src/cli/full_entry.cpp): the\n"
      "// commands of the full binary, for the light binary's `songlines help`. Do not edit.\n"
      "#include \"cli/entry_point.h\"\n\n"
      "namespace songlines::cli {\n\nnamespace {\nconstexpr CommandSummary kFullBinaryCommands[] = {\n";
  for (const auto& c : commands()) out += "    {" + cpp_literal(c.name) + ", " + cpp_literal(c.summary) + "},\n";
  out += "};\n}  // namespace\n\nstd::span<const CommandSummary> full_binary_commands() { return kFullBinaryCommands; }\n\n"
         "}  // namespace songlines::cli\n";
  return out;
}

}  // namespace

std::span<const CommandSummary> full_binary_commands() { return {}; }

bool wants_gpu_of_full_binary(const cxxopts::ParseResult&) { return false; }

void run_in_full_binary(int, char**) {
  throw Error("internal: the full songlines binary was asked to hand a command over to itself");
}

bool run_internal_mode(int argc, char** argv, int* status) {
  if (argc < 2 || std::string(argv[1]) != "__write-command-table") return false;
  if (argc != 3) throw UsageError("__write-command-table FILE: one output file expected");
  write_file_atomic(argv[2], command_table_source());
  *status = 0;
  return true;
}

}  // namespace songlines::cli
