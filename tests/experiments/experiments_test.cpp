// Sweeps (expansion, names, kill + resume, crash isolation, Slurm script), compare's significance marks, the
// HTML report in headless Chromium, and a smoke test over every config in experiments/.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <regex>
#include <thread>

#include "core/error.h"
#include "runs/quickstart.h"
#include "runs/report.h"
#include "runs/results.h"
#include "runs/sweep.h"
#include "runs/task.h"
#include "runs/vae_run.h"
#include "runs/run_config.h"
#include "experiments/report_render.h"
#include "support/test_support.h"

namespace songlines::runs {
namespace {

namespace fs = std::filesystem;
using testing::run_songlines;
using testing::TempDir;

std::string slice() { return testing::data_path("gom/gom_slice_60.txt").string(); }

// A base config small enough that a trial takes about a second: 60 tracks, 3 folds, one tiny MLP.
Json tiny_base() {
  return Json::parse(R"({
    "experiment": "tiny-sweep", "seed": 0, "device": "cpu",
    "data": {"table": {"format": "gom", "path": ")" + slice() + R"("}},
    "evaluation": {"folds": 3, "repeats": 1},
    "models": [{"name": "mlp", "type": "mlp", "hidden_sizes": [8], "train": {"epochs": 2}}],
    "refit_final": false
  })");
}

fs::path write_config(const fs::path& dir, const Json& j, const std::string& name = "sweep.json") {
  fs::create_directories(dir);
  std::ofstream(dir / name) << j.dump(2);
  return dir / name;
}


TEST(Sweep, ExpandsGridRandomAndSeedsWithStableSafeNames) {
  TempDir dir;
  Json j = tiny_base();
  j["sweep"] = Json::parse(R"({
    "grid": {"models.0.head.type": ["sphere", "vmf_mixture"]},
    "random": {"samples": 3, "seed": 7, "params": {
      "models.0.train.learning_rate": {"distribution": "loguniform", "low": 0.0001, "high": 0.01},
      "models.0.dropout": {"distribution": "uniform", "low": 0.0, "high": 0.5},
      "models.0.hidden_sizes": {"distribution": "choice", "values": [[4], [8, 4]]},
      "evaluation.folds": {"distribution": "int", "low": 2, "high": 4}}},
    "seeds": [0, 1]
  })");
  auto cfg = write_config(dir.path(), j);
  auto spec = load_sweep(cfg, {});
  ASSERT_EQ(spec.trials.size(), 2u * 3u * 2u);
  EXPECT_EQ(spec.name, "sweep");
  std::set<std::string> names, groups;
  const std::regex safe("[A-Za-z0-9._+-]+");
  for (const auto& t : spec.trials) {
    EXPECT_TRUE(std::regex_match(t.name, safe)) << t.name;
    EXPECT_LE(t.name.size(), 120u) << t.name;
    names.insert(t.name);
    groups.insert(t.group);
    auto c = runs::RunConfig::from_json(trial_config(spec, t), dir.path());
    const auto& m = c.models[0];
    EXPECT_GE(m.train.learning_rate, 0.0001);
    EXPECT_LE(m.train.learning_rate, 0.01);
    EXPECT_GE(c.evaluation.folds, 2);
    EXPECT_LE(c.evaluation.folds, 4);
    ASSERT_TRUE(t.seed.has_value());
    EXPECT_EQ(c.seed, *t.seed);
  }
  EXPECT_EQ(names.size(), spec.trials.size());
  EXPECT_EQ(groups.size(), 6u);  // seeds pool into groups
  // Same config, same trials (the names are what resume relies on).
  auto again = load_sweep(cfg, {});
  for (size_t i = 0; i < spec.trials.size(); ++i) EXPECT_EQ(again.trials[i].name, spec.trials[i].name);
  // Another random seed draws other values.
  auto other = load_sweep(cfg, {"sweep.random.seed=8"});
  EXPECT_NE(other.trials[0].name, spec.trials[0].name);
}

TEST(Sweep, TypoInAGridKeyFailsUpFrontNamingTheTrial) {
  TempDir dir;
  Json j = tiny_base();
  j["sweep"] = {{"grid", {{"models.0.train.epochz", {1, 2}}}}};
  try {
    load_sweep(write_config(dir.path(), j), {});
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("epochz"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("trial 0"), std::string::npos) << e.what();
  }
  j["sweep"] = {{"grid", {{"models.5.train.epochs", {1}}}}};  // no such model
  EXPECT_THROW(load_sweep(write_config(dir.path(), j), {}), UsageError);
}

TEST(Sweep, LongNamesAreShortenedStably) {
  std::vector<std::string> o;
  for (int i = 0; i < 20; ++i) o.push_back("models.0.some_long_key_" + std::to_string(i) + "=\"value/with spaces\"");
  auto a = trial_name(o), b = trial_name(o);
  EXPECT_EQ(a, b);
  EXPECT_LE(a.size(), 120u);
  o.back() = "models.0.some_long_key_19=\"other\"";
  EXPECT_NE(trial_name(o), a);
  EXPECT_EQ(trial_name({"models.0.head.type=\"sphere\"", "seed=1"}), "models.0.head.type-sphere__seed-1");
}

// Starts `songlines ARGS...` in its own process group so that the test can kill the sweep and its children.
pid_t spawn_group(const std::vector<std::string>& args, const fs::path& log) {
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    FILE* f = std::freopen(log.c_str(), "w", stdout);
    (void)f;
    dup2(fileno(stdout), 2);
    std::vector<char*> argv;
    std::string bin = testing::binary_path().string();
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    setenv("SONGLINES_NO_PROGRESS", "1", 1);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  setpgid(pid, pid);
  return pid;
}

TEST(Sweep, KilledMidwayResumesWithoutRedoingFinishedTrials) {
  TempDir dir;
  Json j = tiny_base();
  // Two quick trials first, then two slow ones that are still running when the sweep is killed.
  j["sweep"] = Json::parse(R"({"grid": {"models.0.train.epochs": [2, 400]}, "seeds": [0, 1]})");
  auto cfg = write_config(dir.path(), j);
  const fs::path sweep_dir = dir / "sw";
  auto spec = load_sweep(cfg, {});
  ASSERT_EQ(spec.trials.size(), 4u);

  pid_t pid = spawn_group({"sweep", cfg.string(), "--sweep-dir", sweep_dir.string(), "--workers", "2"},
                          dir / "first.log");
  std::map<std::string, fs::file_time_type> finished;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(240);
  while (finished.empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (const auto& t : spec.trials)
      if (trial_complete(sweep_dir / "trials" / t.name))
        finished[t.name] = fs::last_write_time(sweep_dir / "trials" / t.name / "metrics.json");
  }
  ASSERT_EQ(::kill(-pid, SIGKILL), 0);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_FALSE(finished.empty()) << read_text(dir / "first.log");
  // Trials that finished between the poll and the kill count as finished too.
  for (const auto& t : spec.trials)
    if (trial_complete(sweep_dir / "trials" / t.name))
      finished[t.name] = fs::last_write_time(sweep_dir / "trials" / t.name / "metrics.json");
  ASSERT_LT(finished.size(), spec.trials.size()) << "every trial finished before the kill; nothing to resume";

  auto r = run_songlines("sweep '" + cfg.string() + "' --sweep-dir '" + sweep_dir.string() + "' --workers 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const auto& [name, mtime] : finished) {
    EXPECT_NE(r.output.find("skip    [" ), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(name + " (complete)"), std::string::npos) << name << "\n" << r.output;
    EXPECT_EQ(fs::last_write_time(sweep_dir / "trials" / name / "metrics.json"), mtime) << name << " was redone";
  }
  for (const auto& t : spec.trials) EXPECT_TRUE(trial_complete(sweep_dir / "trials" / t.name)) << t.name;
  // Results: two groups (epochs 2 and 400), each pooling 2 seeds x 3 folds.
  auto groups = load_sweep_groups(sweep_dir);
  ASSERT_EQ(groups.size(), 2u);
  for (const auto& g : groups) EXPECT_EQ(g.samples.at("mlp").at("mean_km").values.size(), 6u) << g.label;
  auto csv = read_text(sweep_dir / "results.csv");
  EXPECT_NE(csv.find("models.0.train.epochs-400,mlp,mean_km,6,"), std::string::npos) << csv;
  EXPECT_NE(r.output.find("+-"), std::string::npos) << r.output;
  auto manifest = load_json_file((sweep_dir / "sweep.json").string());
  EXPECT_EQ(manifest["trials"].size(), 4u);
  EXPECT_TRUE(manifest["trials"][3]["complete"].get<bool>());

  // The sweep report links every trial's own report, which it writes beside each trial.
  auto rep = run_songlines("report '" + sweep_dir.string() + "'");
  ASSERT_EQ(rep.exit_code, 0) << rep.output;
  auto html = read_text(sweep_dir / "report.html");
  for (const auto& t : spec.trials) {
    EXPECT_NE(html.find("trials/" + t.name + "/report.html"), std::string::npos) << t.name;
    EXPECT_TRUE(fs::exists(sweep_dir / "trials" / t.name / "report.html")) << t.name;
  }

  // A second rerun has nothing to do.
  auto again = run_songlines("sweep '" + cfg.string() + "' --sweep-dir '" + sweep_dir.string() + "'");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("0 to run"), std::string::npos) << again.output;
}

TEST(Sweep, AFailingTrialIsReportedAndTheOthersFinish) {
  TempDir dir;
  Json j = tiny_base();
  j["sweep"] = {{"grid", {{"data.table.path", {slice(), (dir / "missing.txt").string()}}}}};
  auto cfg = write_config(dir.path(), j);
  auto r = run_songlines("sweep '" + cfg.string() + "' --sweep-dir '" + (dir / "sw").string() + "' --workers 2");
  EXPECT_EQ(r.exit_code, static_cast<int>(ExitStatus::kPartial)) << r.output;
  EXPECT_NE(r.output.find("FAILED"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("missing.txt"), std::string::npos) << r.output;
  auto spec = load_sweep(cfg, {});
  EXPECT_TRUE(trial_complete(dir / "sw" / "trials" / spec.trials[0].name));
  EXPECT_FALSE(trial_complete(dir / "sw" / "trials" / spec.trials[1].name));
}

TEST(Sweep, EmitSlurmWritesAValidArrayScriptNamingEveryTrial) {
  TempDir dir;
  Json j = tiny_base();
  j["sweep"] = Json::parse(R"({"grid": {"models.0.head.type": ["sphere", "vmf_mixture", "latlon_mse"]}, "seeds": [3, 4]})");
  auto cfg = write_config(dir.path(), j);
  const auto sweep_dir = dir / "shared" / "sw";
  auto r = run_songlines("sweep '" + cfg.string() + "' --sweep-dir '" + sweep_dir.string() + "' --emit slurm");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto script = sweep_dir / "sweep.slurm";
  ASSERT_TRUE(fs::exists(script));
  auto syntax = testing::run_command("bash -n '" + script.string() + "'");
  EXPECT_EQ(syntax.exit_code, 0) << syntax.output;
  auto text = read_text(script);
  EXPECT_NE(text.find("#SBATCH --array=0-5"), std::string::npos) << text;
  EXPECT_NE(text.find("--trial \"$SLURM_ARRAY_TASK_ID\""), std::string::npos) << text;
  // It runs the entry point the user ran, not the full binary that `sweep` was handed to (src/cli/entry_point.h).
  EXPECT_NE(text.find(fs::canonical(testing::binary_path()).string()), std::string::npos) << text;
  EXPECT_EQ(text.find("libexec"), std::string::npos) << text;
  auto spec = load_sweep(cfg, {});
  ASSERT_EQ(spec.trials.size(), 6u);
  for (const auto& t : spec.trials)
    EXPECT_NE(text.find(std::to_string(t.index) + ": " + t.name), std::string::npos) << t.name;
  // What one array task runs: trial 4 alone, into the same layout.
  auto task = run_songlines("sweep '" + cfg.string() + "' --sweep-dir '" + sweep_dir.string() + "' --trial 4");
  ASSERT_EQ(task.exit_code, 0) << task.output;
  EXPECT_TRUE(trial_complete(sweep_dir / "trials" / spec.trials[4].name));
  EXPECT_FALSE(trial_complete(sweep_dir / "trials" / spec.trials[0].name));
  auto bad = run_songlines("sweep '" + cfg.string() + "' --sweep-dir '" + sweep_dir.string() + "' --trial 6");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
}

// ---- compare ------------------------------------------------------------------------------------------------

// A finished run directory with given per-fold mean_km values (one repeat), as `songlines run` writes it.
void fake_run(const fs::path& dir, const std::vector<double>& fold_km, uint64_t seed) {
  fs::create_directories(dir);
  Json config = {{"experiment", "fake"}, {"seed", seed}, {"data", {{"table", "t"}}}, {"evaluation", {{"folds", fold_km.size()}}}};
  write_json_file_atomic((dir / "config.json").string(), config);
  std::ofstream jsonl(dir / "metrics.jsonl");
  for (size_t f = 0; f < fold_km.size(); ++f) {
    jsonl << Json{{"model", "m"}, {"repeat", 0}, {"fold", f}, {"epoch", 0}, {"loss", 1.0}}.dump() << "\n";
    jsonl << Json{{"model", "m"}, {"repeat", 0}, {"fold", f}, {"mean_km", fold_km[f]}, {"median_km", fold_km[f] * 0.8},
                  {"within_2500", 0.5}, {"n", 20}}.dump()
          << "\n";
  }
  write_json_file_atomic((dir / "metrics.json").string(), {{"models", {{"m", {}}}}, {"best_model", "m"}});
}

const Json& cell(const Json& cmp, const std::string& metric, size_t run) {
  for (const auto& r : cmp["rows"])
    if (r["metric"] == metric) return r["runs"][run];
  throw std::runtime_error("no row " + metric);
}

TEST(Compare, MarksARealDifferenceAndNotNoise) {
  TempDir dir;
  std::mt19937_64 rng(11);
  std::normal_distribution<double> fold_difficulty(0, 300), noise(0, 20);
  std::vector<double> base, same, better;
  for (int f = 0; f < 10; ++f) {
    double d = 1500 + fold_difficulty(rng);  // folds vary a lot; the models' gap is smaller than that spread
    base.push_back(d + noise(rng));
    same.push_back(d + noise(rng));
    better.push_back(d - 120 + noise(rng));
  }
  fake_run(dir / "base", base, 0);
  fake_run(dir / "same", same, 0);
  fake_run(dir / "better", better, 0);
  fake_run(dir / "other-seed", better, 1);  // different folds: Welch, and 120 km is within the fold spread
  auto cmp = compare_runs({load_run(dir / "base"), load_run(dir / "same"), load_run(dir / "better"),
                           load_run(dir / "other-seed")})
                 .to_json();
  const auto& s = cell(cmp, "mean_km", 1);
  const auto& b = cell(cmp, "mean_km", 2);
  const auto& o = cell(cmp, "mean_km", 3);
  EXPECT_EQ(s["test"], "paired-t");
  EXPECT_FALSE(s["significant"].get<bool>()) << s.dump();
  EXPECT_EQ(b["test"], "paired-t");
  EXPECT_TRUE(b["significant"].get<bool>()) << b.dump();
  EXPECT_LT(b["delta"].get<double>(), -80);
  EXPECT_EQ(o["test"], "welch-t");
  EXPECT_FALSE(o["significant"].get<bool>()) << o.dump();
  // A constant metric has no spread and no difference: never marked.
  EXPECT_FALSE(cell(cmp, "within_2500", 2)["significant"].get<bool>());

  auto r = run_songlines("compare '" + (dir / "base").string() + "' '" + (dir / "better").string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("*better"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("paired t-test"), std::string::npos) << r.output;
  auto js = run_songlines("compare '" + (dir / "base").string() + "' '" + (dir / "same").string() + "' --json -");
  ASSERT_EQ(js.exit_code, 0) << js.output;
  EXPECT_FALSE(cell(Json::parse(js.output), "mean_km", 1)["significant"].get<bool>());
  auto one = run_songlines("compare '" + (dir / "base").string() + "'");
  EXPECT_EQ(one.exit_code, 2) << one.output;
}

TEST(Compare, StudentTTailMatchesTables) {
  // Two-sided 5% critical values: t(10) = 2.228, t(3) = 3.182, t(1000) = 1.9623, t(1) = 12.706.
  EXPECT_NEAR(student_t_two_sided_p(2.228, 10), 0.05, 2e-4);
  EXPECT_NEAR(student_t_two_sided_p(3.182, 3), 0.05, 2e-4);
  EXPECT_NEAR(student_t_two_sided_p(1.9623, 1000), 0.05, 2e-4);
  EXPECT_NEAR(student_t_two_sided_p(12.706, 1), 0.05, 2e-4);
  EXPECT_NEAR(student_t_two_sided_p(0, 5), 1.0, 1e-12);
}

// ---- report -------------------------------------------------------------------------------------------------

// A 1x1 PNG (a standard minimal image) and a short 16-bit mono WAV, standing in for a generative run's samples.
std::string tiny_png() {
  const unsigned char b[] = {0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44,
                             0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F,
                             0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00,
                             0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49,
                             0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82};
  return std::string(reinterpret_cast<const char*>(b), sizeof b);
}

std::string tiny_wav(int samples) {
  auto u32 = [](uint32_t v) { return std::string{char(v), char(v >> 8), char(v >> 16), char(v >> 24)}; };
  auto u16 = [](uint16_t v) { return std::string{char(v), char(v >> 8)}; };
  std::string data;
  for (int i = 0; i < samples; ++i) data += u16(static_cast<uint16_t>(static_cast<int16_t>(8000 * std::sin(0.05 * i))));
  return "RIFF" + u32(36 + data.size()) + "WAVEfmt " + u32(16) + u16(1) + u16(1) + u32(16000) + u32(32000) + u16(2) +
         u16(16) + "data" + u32(data.size()) + data;
}

TEST(Report, LocationRunRendersInHeadlessChromium) {
  TempDir dir;
  Json j = tiny_base();
  j["models"] = Json::parse(R"([{"type": "centroid"}, {"type": "knn", "k": 3},
      {"name": "mlp", "type": "mlp", "hidden_sizes": [8], "head": {"type": "vmf_mixture"}, "train": {"epochs": 20}}])");
  auto cfg = write_config(dir.path(), j, "run.json");
  auto r = run_songlines("run '" + cfg.string() + "' --run-dir '" + (dir / "run").string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto rep = run_songlines("report '" + (dir / "run").string() + "'");
  ASSERT_EQ(rep.exit_code, 0) << rep.output;
  const auto html = dir / "run" / "report.html";
  auto text = read_text(html);
  for (const char* part : {"sec-map", "sec-cdf", "sec-countries", "sec-curves", "model-select", "<polyline"})
    EXPECT_NE(text.find(part), std::string::npos) << part;
  EXPECT_EQ(text.find("http://"), std::string::npos) << "the report must not reference the network";
  EXPECT_EQ(text.find("https://"), std::string::npos);
  if (!have_chromium()) GTEST_SKIP() << "chromium is not installed (scripts/setup.sh installs it)";
  expect_clean_render(html, dir / "run.png", true);
}

TEST(Report, GenerativeRunEmbedsSpectrogramsAndAudio) {
  TempDir dir;
  const auto run = dir / "vae";
  fs::create_directories(run / "samples");
  write_json_file_atomic((run / "config.json").string(), {{"task", "vae"}, {"experiment", "vae-fake"}, {"seed", 0}});
  write_json_file_atomic((run / "metrics.json").string(), {{"val_nmse", 0.42}, {"kl", 3.5}});
  {
    std::ofstream jsonl(run / "metrics.jsonl");
    for (int s = 0; s <= 100; s += 10)
      jsonl << Json{{"step", s}, {"loss", 2.0 / (1 + s)}, {"kl", 0.1 * s}}.dump() << "\n";
    std::ofstream(run / "samples" / "FR.wav", std::ios::binary) << tiny_wav(1600);
    std::ofstream(run / "samples" / "FR.png", std::ios::binary) << tiny_png();
    std::ofstream(run / "samples" / "places.csv") << "name,latitude,longitude\nFR,48.86,2.35\n";
  }
  auto out = write_report(run, dir / "vae.html");
  auto text = read_text(out);
  EXPECT_NE(text.find("data:audio/wav;base64," + base64_encode(tiny_wav(1600))), std::string::npos);
  EXPECT_NE(text.find("data:image/png;base64,iVBORw0KGgo"), std::string::npos);
  EXPECT_NE(text.find("latitude 48.86"), std::string::npos);
  EXPECT_EQ(text.find("sec-map"), std::string::npos) << "no map without predictions";
  if (!have_chromium()) GTEST_SKIP() << "chromium is not installed";
  expect_clean_render(out, dir / "vae.png", false);
}

TEST(Report, Base64MatchesRfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
}

// ---- experiments/*.json -------------------------------------------------------------------------------------

TEST(ExperimentConfigs, EveryConfigLoadsAndLocationConfigsRunTiny) {
  int ran = 0, validated = 0;
  for (const auto& e : fs::directory_iterator(testing::source_dir() / "experiments")) {
    if (e.path().extension() != ".json") continue;
    SCOPED_TRACE(e.path().string());
    Json j = load_json_file(e.path().string());
    if (is_sweep_config(j)) {
      auto spec = load_sweep(e.path(), {});  // validates every trial
      EXPECT_FALSE(spec.trials.empty());
      ++validated;
      continue;
    }
    if (task_of(j) == "quickstart") {
      EXPECT_NO_THROW(load_quickstart_config(e.path(), {}));
      ++validated;  // run at tiny size by QuickstartConfig.RunsEndToEndAtTinySize
      continue;
    }
    if (task_of(j) == "vae") {
      // Real-audio VAE configs name data CI does not have: strict validation only.
      EXPECT_NO_THROW(load_vae_run_config(e.path(), {}));
      ++validated;
      continue;
    }
    if (task_of(j) == "vocoder") {
      // Real-audio vocoder configs name data CI does not have: strict validation only.
      EXPECT_NO_THROW(runs::load_run(e.path(), {}));
      ++validated;
      continue;
    }
    runs::RunConfig config;
    ASSERT_NO_THROW(config = runs::load_run_config(e.path(), {}));
    if (!config.data.table_path.empty() && !fs::exists(config.data.table_path)) {
      std::cout << "[ note ] " << e.path().filename() << ": data " << config.data.table_path
                << " absent, validated only\n";
      ++validated;
      continue;
    }
    std::string sets = " --set evaluation.folds=2 --set evaluation.repeats=1";
    for (size_t i = 0; i < config.models.size(); ++i)
      if (config.models[i].type == "mlp" || config.models[i].type == "temporal")
        sets += " --set models." + std::to_string(i) + ".train.epochs=1";
    TempDir out;
    auto r = run_songlines("run '" + e.path().string() + "' --run-dir '" + (out / "run").string() + "'" + sets);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(fs::exists(out / "run" / "metrics.json")) << r.output;
    ++ran;
  }
  EXPECT_GE(ran, 1) << "gom.json ships its data and must run";
  std::cout << "[ info ] experiments/: " << ran << " ran tiny, " << validated << " validated only\n";
}

// The resolved config a run writes (its config.json, whose identity names and resumes the run) reads back to
// itself, for every config and sweep trial here: each options struct's one field list (core/json_fields.h)
// writes every key it reads.
TEST(ExperimentConfigs, ResolvedConfigsReadBackToThemselves) {
  int checked = 0;
  for (const auto& e : fs::directory_iterator(testing::source_dir() / "experiments")) {
    if (e.path().extension() != ".json") continue;
    SCOPED_TRACE(e.path().string());
    const Json j = load_json_file(e.path().string());
    std::vector<Json> configs;
    if (is_sweep_config(j)) {
      const auto spec = load_sweep(e.path(), {});
      for (const auto& t : spec.trials) configs.push_back(trial_config(spec, t));
    } else {
      configs.push_back(j);
    }
    for (const auto& c : configs) {
      const auto run = runs::prepare_run(c, e.path().parent_path());
      EXPECT_EQ(runs::prepare_run(run.resolved, e.path().parent_path()).resolved.dump(2), run.resolved.dump(2));
      ++checked;
    }
  }
  EXPECT_GE(checked, 8);
}

// ---- the main job: experiments/quickstart.json ----------------------------------------------------------------

TEST(QuickstartConfig, ErrorsNameTheKeyOfTheRightPart) {
  const fs::path config = testing::source_dir() / "experiments" / "quickstart.json";
  auto message = [&](const std::vector<std::string>& sets) {
    try {
      load_quickstart_config(config, sets);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(message({"audio.placez=3"}).find("audio: unknown key \"placez\""), std::string::npos) << message({"audio.placez=3"});
  EXPECT_NE(message({"audio.places=9"}).find("audio.places"), std::string::npos);
  const std::string loc = message({"location.models.2.train.epochz=3"});
  EXPECT_NE(loc.find("location."), std::string::npos) << loc;
  EXPECT_NE(loc.find("epochz"), std::string::npos) << loc;
  const std::string vae = message({"vae.model.chanels=[4]"});
  EXPECT_NE(vae.find("vae."), std::string::npos) << vae;
  EXPECT_NE(vae.find("chanels"), std::string::npos) << vae;
  const std::string shards = message({"vae.data.shards=[\"x\"]"});
  // Prefixed once with the part's key (not "vae.vae.data.shards").
  EXPECT_NE(shards.find("vae.data.shards: filled in by the quickstart"), std::string::npos) << shards;
  EXPECT_EQ(shards.find("vae.vae."), std::string::npos) << shards;
  const std::string voc = message({"vocoder.train.stpes=3"});
  EXPECT_NE(voc.find("vocoder."), std::string::npos) << voc;
  EXPECT_NE(voc.find("stpes"), std::string::npos) << voc;
  // The vocoder stage is handed the synthesized audio and the features' mel analysis; naming others is refused.
  const std::string voc_audio = message({"vocoder.data.audio=[\"x\"]"});
  EXPECT_NE(voc_audio.find("vocoder.data.audio: filled in by the quickstart"), std::string::npos) << voc_audio;
  const std::string voc_mel = message({"vocoder.mel_from_vae=\"x\""});
  EXPECT_NE(voc_mel.find("vocoder.mel_from_vae: filled in by the quickstart"), std::string::npos) << voc_mel;
  // And on the command line: exit 2 with the message.
  TempDir out;
  auto r = run_songlines("run '" + config.string() + "' --run-dir '" + (out / "q").string() + "' --set audio.placez=3");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("unknown key \"placez\""), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out / "q")) << "a refused config leaves nothing behind";
}

}  // namespace
}  // namespace songlines::runs
