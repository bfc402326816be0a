#include "runs/sweep.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <torch/cuda.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <iomanip>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/shell_quote.h"
#include "runs/task.h"

extern char** environ;

namespace songlines::runs {

namespace fs = std::filesystem;

namespace {

// Names must stay short enough for one path component (255 bytes) with room for temporary suffixes.
constexpr size_t kMaxTrialName = 120;
constexpr size_t kTrialNamePrefix = 100;
// Sampled real values are rounded to this many significant digits: the names stay readable and a trial's
// override reproduces exactly what ran.
constexpr int kSampleDigits = 4;

// FNV-1a: a hash that is the same on every platform and compiler (std::hash is not), for stable names.
uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string sanitize(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '+') ? c : '_';
  return out;
}

double round_significant(double x, int digits) {
  if (x == 0 || !std::isfinite(x)) return x;
  double scale = std::pow(10.0, digits - 1 - static_cast<int>(std::floor(std::log10(std::fabs(x)))));
  return std::round(x * scale) / scale;
}

Json draw(const std::string& where, const Json& spec, std::mt19937_64& rng) {
  ConfigReader r(spec, where);
  std::string dist;
  r.require("distribution", dist);
  Json out;
  if (dist == "choice") {
    std::vector<Json> values;
    r.require("values", values);
    if (values.empty()) throw ConfigError(where + ".values: empty");
    out = values[std::uniform_int_distribution<size_t>(0, values.size() - 1)(rng)];
  } else if (dist == "uniform" || dist == "loguniform") {
    double low = 0, high = 0;
    r.require("low", low);
    r.require("high", high);
    if (!(low <= high)) throw ConfigError(where + ": low " + std::to_string(low) + " > high " + std::to_string(high));
    if (dist == "loguniform") {
      if (low <= 0) throw ConfigError(where + ".low: loguniform needs low > 0, got " + std::to_string(low));
      out = round_significant(std::exp(std::uniform_real_distribution<double>(std::log(low), std::log(high))(rng)),
                              kSampleDigits);
    } else {
      out = round_significant(std::uniform_real_distribution<double>(low, high)(rng), kSampleDigits);
    }
  } else if (dist == "int") {
    int64_t low = 0, high = 0;
    r.require("low", low);
    r.require("high", high);
    if (low > high) throw ConfigError(where + ": low " + std::to_string(low) + " > high " + std::to_string(high));
    out = std::uniform_int_distribution<int64_t>(low, high)(rng);  // inclusive bounds
  } else {
    throw ConfigError(where + ".distribution: unknown \"" + dist + "\" (choice, uniform, loguniform, int)");
  }
  r.finish();
  return out;
}

std::string override_of(const std::string& key, const Json& value) { return key + "=" + value.dump(); }

}  // namespace

bool is_sweep_config(const Json& j) { return j.is_object() && j.contains("sweep"); }

std::string trial_name(const std::vector<std::string>& overrides) {
  if (overrides.empty()) return "base";
  std::string name;
  for (const auto& o : overrides) {
    auto eq = o.find('=');
    std::string value = o.substr(eq + 1);
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    if (!name.empty()) name += "__";
    name += sanitize(o.substr(0, eq)) + "-" + sanitize(value);
  }
  if (name.size() > kMaxTrialName) {
    std::ostringstream h;
    h << std::hex << std::setw(16) << std::setfill('0') << fnv1a(name);
    name = name.substr(0, kTrialNamePrefix) + "-" + h.str();
  }
  return name;
}

SweepSpec load_sweep(const fs::path& config_file, const std::vector<std::string>& overrides) {
  SweepSpec spec;
  spec.config_file = fs::absolute(config_file);
  Json j = load_json_file(config_file.string());
  if (!is_sweep_config(j)) throw ConfigError(config_file.string() + ": no \"sweep\" section");
  for (const auto& o : overrides) apply_override(j, o);
  spec.base_overrides = overrides;
  Json section = j["sweep"];
  j.erase("sweep");
  spec.base = j;
  spec.task = task_of(j);
  if (!find_task(spec.task).sweepable)
    throw ConfigError("sweep: trials of task \"" + spec.task + "\" cannot be swept (their run writes no metrics.json); "
                      "sweep its parts' configs instead");

  ConfigReader r(section, "sweep");
  spec.name = config_file.stem().string();
  r.read("name", spec.name);
  if (spec.name.empty() || sanitize(spec.name) != spec.name)
    throw ConfigError("sweep.name: \"" + spec.name + "\" must be non-empty and use only letters, digits, . - +");

  // Combinations: the grid's cartesian product (keys in sorted order), each crossed with every random sample.
  std::vector<std::vector<std::string>> combos{{}};
  const Json& grid = r.raw("grid");
  if (!grid.is_null()) {
    if (!grid.is_object()) throw ConfigError("sweep.grid: expected object of key: [values]");
    for (const auto& [key, values] : grid.items()) {
      if (!values.is_array() || values.empty())
        throw ConfigError("sweep.grid." + key + ": expected a non-empty array of values");
      std::vector<std::vector<std::string>> next;
      for (const auto& c : combos)
        for (const auto& v : values) {
          auto e = c;
          e.push_back(override_of(key, v));
          next.push_back(std::move(e));
        }
      combos = std::move(next);
    }
  }
  const Json& random = r.raw("random");
  if (!random.is_null()) {
    ConfigReader rr(random, "sweep.random");
    int samples = 0;
    uint64_t seed = 0;
    rr.require("samples", samples);
    rr.read("seed", seed);
    const Json& params = rr.raw("params");
    rr.finish();
    if (samples < 1) throw ConfigError("sweep.random.samples: expected >= 1, got " + std::to_string(samples));
    if (!params.is_object() || params.empty()) throw ConfigError("sweep.random.params: expected a non-empty object");
    std::mt19937_64 rng(seed);
    std::vector<std::vector<std::string>> drawn;
    for (int s = 0; s < samples; ++s) {
      std::vector<std::string> d;
      for (const auto& [key, p] : params.items()) d.push_back(override_of(key, draw("sweep.random.params." + key, p, rng)));
      drawn.push_back(std::move(d));
    }
    std::vector<std::vector<std::string>> next;
    for (const auto& c : combos)
      for (const auto& d : drawn) {
        auto e = c;
        e.insert(e.end(), d.begin(), d.end());
        next.push_back(std::move(e));
      }
    combos = std::move(next);
  }
  std::vector<uint64_t> seeds;
  r.read("seeds", seeds);
  r.finish();

  std::set<std::string> names;
  for (const auto& c : combos) {
    std::vector<std::optional<uint64_t>> trial_seeds(seeds.begin(), seeds.end());
    if (trial_seeds.empty()) trial_seeds.push_back(std::nullopt);
    for (const auto& s : trial_seeds) {
      Trial t;
      t.index = static_cast<int>(spec.trials.size());
      t.overrides = c;
      t.group = trial_name(c);
      t.seed = s;
      if (s) t.overrides.push_back("seed=" + std::to_string(*s));
      t.name = trial_name(t.overrides);
      if (!names.insert(t.name).second)
        throw ConfigError("sweep: two trials have the same overrides (" + t.name + "); remove duplicate values");
      spec.trials.push_back(std::move(t));
    }
  }
  // Validate every trial's config now: a typo in a grid key must fail before hours of compute, not in trial 17.
  for (const auto& t : spec.trials) {
    try {
      (void)prepare_run(trial_config(spec, t), spec.config_file.parent_path());
    } catch (const UsageError& e) {
      throw ConfigError("sweep trial " + std::to_string(t.index) + " (" + t.name + "): " + e.what());
    }
  }
  return spec;
}

Json trial_config(const SweepSpec& spec, const Trial& trial) {
  Json j = spec.base;
  for (const auto& o : trial.overrides) apply_override(j, o);
  return j;
}

fs::path default_sweep_dir(const SweepSpec& spec, const fs::path& output_root) {
  return output_root / "sweeps" / spec.name;
}

bool trial_complete(const fs::path& trial_dir) { return fs::exists(trial_dir / "metrics.json"); }

Json sweep_manifest(const SweepSpec& spec, const fs::path& sweep_dir) {
  Json trials = Json::array();
  for (const auto& t : spec.trials) {
    Json tj = {{"index", t.index},         {"name", t.name}, {"group", t.group}, {"overrides", t.overrides},
               {"dir", "trials/" + t.name}, {"complete", trial_complete(sweep_dir / "trials" / t.name)}};
    tj["seed"] = t.seed ? Json(*t.seed) : Json();
    trials.push_back(tj);
  }
  return {{"name", spec.name},
          {"config", spec.config_file.string()},
          {"set", spec.base_overrides},
          {"task", spec.task},
          {"base", spec.base},
          {"trials", trials}};
}

Json run_trial(const SweepSpec& spec, const Trial& trial, const fs::path& sweep_dir, std::ostream& log) {
  const fs::path dir = sweep_dir / "trials" / trial.name;
  fs::create_directories(dir);
  Json tj = trial_config(spec, trial);
  log << "trial " << trial.index << " (" << trial.name << ") in " << dir.string() << "\n";
  return prepare_run(tj, spec.config_file.parent_path()).run(dir, log).metrics;
}

namespace {

struct Child {
  int trial = 0;
  int slot = 0;
  std::chrono::steady_clock::time_point start;
};

// Devices a worker slot may use: the entries of an inherited CUDA_VISIBLE_DEVICES, else 0..count-1.
std::vector<std::string> visible_devices(int count) {
  std::vector<std::string> out;
  if (const char* v = std::getenv("CUDA_VISIBLE_DEVICES"); v && *v) {
    std::stringstream ss(v);
    std::string part;
    while (std::getline(ss, part, ',') && static_cast<int>(out.size()) < count) out.push_back(part);
  }
  for (int i = static_cast<int>(out.size()); i < count; ++i) out.push_back(std::to_string(i));
  return out;
}

pid_t spawn_trial(const SweepSpec& spec, const Trial& t, const fs::path& sweep_dir, const SweepOptions& o,
                  const std::optional<std::string>& device) {
  const fs::path dir = sweep_dir / "trials" / t.name;
  fs::create_directories(dir);
  const std::string log_path = (dir / "log.txt").string();

  std::vector<std::string> args{o.executable.string(), "sweep", spec.config_file.string(), "--trial",
                                std::to_string(t.index), "--sweep-dir", sweep_dir.string()};
  for (const auto& a : o.child_args) args.push_back(a);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string_view s(*e);
    if (s.rfind("CUDA_VISIBLE_DEVICES=", 0) == 0 && device) continue;
    env.emplace_back(s);
  }
  if (device) env.push_back("CUDA_VISIBLE_DEVICES=" + *device);
  env.push_back("SONGLINES_NO_PROGRESS=1");  // the child's stderr is a log file
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw IoError("sweep: cannot start " + args[0] + ": " + std::strerror(rc));
  return pid;
}

std::string last_line(const fs::path& file) {
  std::ifstream in(file);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return last;
}

}  // namespace

std::vector<TrialOutcome> run_sweep(const SweepSpec& spec, const fs::path& sweep_dir, const SweepOptions& options,
                                    std::ostream& log) {
  fs::create_directories(sweep_dir / "trials");
  write_json_file_atomic((sweep_dir / "sweep.json").string(), sweep_manifest(spec, sweep_dir));

  SweepOptions o = options;
  if (o.executable.empty()) o.executable = fs::read_symlink("/proc/self/exe");
  const int gpus = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  int workers = o.workers > 0 ? o.workers : (gpus > 0 ? gpus : 1);
  if (gpus > 0) workers = std::min(workers, gpus);  // one trial per GPU
  const auto devices = visible_devices(gpus);

  std::vector<TrialOutcome> outcomes(spec.trials.size());
  std::deque<int> pending;
  for (const auto& t : spec.trials) {
    outcomes[t.index].index = t.index;
    if (trial_complete(sweep_dir / "trials" / t.name)) {
      outcomes[t.index].state = TrialOutcome::State::kSkipped;
      log << "skip    [" << t.index << "] " << t.name << " (complete)\n";
    } else {
      pending.push_back(t.index);
    }
  }
  log << "sweep " << spec.name << ": " << spec.trials.size() << " trials, " << pending.size() << " to run, "
      << workers << (gpus > 0 ? " GPU" : " CPU") << " worker(s); logs in trials/<name>/log.txt\n";

  std::map<pid_t, Child> running;
  std::vector<bool> slot_busy(workers, false);
  size_t finished = 0;
  const size_t to_run = pending.size();
  while (!pending.empty() || !running.empty()) {
    while (!pending.empty() && static_cast<int>(running.size()) < workers) {
      int slot = 0;
      while (slot_busy[slot]) ++slot;
      int idx = pending.front();
      pending.pop_front();
      std::optional<std::string> device;
      if (gpus > 0) device = devices[slot];
      pid_t pid = spawn_trial(spec, spec.trials[idx], sweep_dir, o, device);
      slot_busy[slot] = true;
      running[pid] = {idx, slot, std::chrono::steady_clock::now()};
      log << "start   [" << idx << "] " << spec.trials[idx].name << (device ? " on GPU " + *device : "") << "\n";
    }
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      throw IoError(std::string("sweep: waitpid: ") + std::strerror(errno));
    }
    auto it = running.find(pid);
    if (it == running.end()) continue;
    Child c = it->second;
    running.erase(it);
    slot_busy[c.slot] = false;
    const auto& t = spec.trials[c.trial];
    auto& out = outcomes[c.trial];
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - c.start).count();
    out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    ++finished;
    const fs::path dir = sweep_dir / "trials" / t.name;
    std::ostringstream line;
    line << std::fixed << std::setprecision(1);
    if (out.exit_code == 0 && trial_complete(dir)) {
      out.state = TrialOutcome::State::kCompleted;
      line << "done    [" << c.trial << "] " << t.name << " " << out.seconds << " s";
    } else {
      out.state = TrialOutcome::State::kFailed;
      line << "FAILED  [" << c.trial << "] " << t.name << " "
           << (WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                                   : "exit " + std::to_string(out.exit_code))
           << ": " << last_line(dir / "log.txt") << " (" << (dir / "log.txt").string() << ")";
    }
    log << line.str() << "  (" << finished << "/" << to_run << ")\n";
  }
  // The manifest's "complete" flags now reflect this pass.
  write_json_file_atomic((sweep_dir / "sweep.json").string(), sweep_manifest(spec, sweep_dir));
  return outcomes;
}

std::string slurm_script(const SweepSpec& spec, const fs::path& sweep_dir, const fs::path& executable,
                         const std::vector<std::string>& sweep_args) {
  std::ostringstream s;
  s << "#!/bin/bash\n"
    << "# Slurm job array for sweep " << spec.name << " (" << spec.trials.size() << " trials), written by "
    << "`songlines sweep --emit slurm`.\n"
    << "# Submit with: sbatch " << (sweep_dir / "sweep.slurm").string() << "\n"
    << "# Each array task runs one trial into " << (sweep_dir / "trials").string() << "/<name>/ on shared storage;\n"
    << "# a complete trial is left alone and a partial one resumes, so resubmitting retries only what is missing.\n"
    << "# Collect results afterwards with: songlines sweep ... (same arguments, runs nothing that is complete)\n"
    << "# or songlines compare " << sweep_dir.string() << "\n"
    << "#SBATCH --job-name=songlines-" << spec.name << "\n"
    << "#SBATCH --array=0-" << (spec.trials.size() - 1) << "\n"
    << "#SBATCH --output=" << (sweep_dir / "slurm-%A_%a.out").string() << "\n"
    << "#SBATCH --ntasks=1\n"
    << "#SBATCH --cpus-per-task=4\n"
    << "#SBATCH --gres=gpu:1\n"
    << "# Trials (index: name):\n";
  for (const auto& t : spec.trials) s << "#   " << t.index << ": " << t.name << "\n";
  s << "set -euo pipefail\n"
    << "exec " << shell_quote(executable.string()) << " sweep " << shell_quote(spec.config_file.string()) << " --trial "
    << "\"$SLURM_ARRAY_TASK_ID\" --sweep-dir " << shell_quote(sweep_dir.string());
  for (const auto& a : sweep_args) s << " " << shell_quote(a);
  s << "\n";
  return s.str();
}

}  // namespace songlines::runs
