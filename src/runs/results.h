// Reading finished run directories back as samples of each metric, pooling them (seeds x repeats x folds) into
// mean +- std, and comparing two pools against their run-to-run spread (`songlines compare`, the sweep
// results table, the reports). docs/experiments.md states the test used.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/config.h"

namespace songlines::runs {

/// One metric's values in a run or a pool of runs, each tagged with the evaluation unit it came from
/// ("s<seed>-r<repeat>-f<fold>" for a location run, "s<seed>" for a generative run) so that two pools scored
/// on identical folds can be paired.
struct MetricSamples {
  std::vector<std::string> keys;
  std::vector<double> values;
};

/// model -> metric -> samples. Generative runs use the model name "vae".
using MetricTable = std::map<std::string, std::map<std::string, MetricSamples>>;

struct RunRecord {
  std::filesystem::path dir;
  std::string label;          ///< directory name, or the sweep group
  Json config;                ///< config.json
  Json metrics;               ///< metrics.json
  bool generative = false;
  MetricTable samples;
  /// The part of the config that fixes the evaluation units (data + evaluation); paired tests need it equal.
  std::string fold_signature;
};

/// Reads a finished run directory (config.json, metrics.json, metrics.jsonl). InputError when it is not one.
RunRecord load_run(const std::filesystem::path& dir);

/// Pools runs (the seeds of one sweep group) under one label.
RunRecord pool_runs(const std::vector<RunRecord>& runs, const std::string& label);

/// Whether dir is a sweep directory (has sweep.json).
bool is_sweep_dir(const std::filesystem::path& dir);

/// A sweep's complete trials pooled per group, in trial order; `incomplete` gets the groups' missing trials.
std::vector<RunRecord> load_sweep_groups(const std::filesystem::path& sweep_dir, std::vector<std::string>* incomplete = nullptr);

struct Summary {
  int64_t n = 0;
  double mean = 0;
  double std = 0;  ///< sample standard deviation (n - 1); 0 when n < 2
};
Summary summarize(const std::vector<double>& values);

/// Metrics in display order: the location metrics first, then any others alphabetically.
std::vector<std::string> metric_order(const std::vector<RunRecord>& runs);
/// Whether larger is better for a metric (shares and accuracies) or smaller (errors and losses).
bool higher_is_better(const std::string& metric);

struct Difference {
  double delta = 0;        ///< mean(b) - mean(a)
  double stderr_ = 0;      ///< standard error of delta
  double t = 0;            ///< delta / stderr
  double df = 0;           ///< degrees of freedom
  double p = 1;            ///< two-sided p-value
  bool paired = false;     ///< paired t-test over identical evaluation units, else Welch's t-test
  bool significant = false;  ///< p < alpha
};

/// Compares metric samples of b against a: a paired t-test when both hold the same evaluation units of the
/// same folds (paired = true), Welch's unequal-variance t-test otherwise. Fewer than 2 samples on a side: not
/// significant.
Difference compare_samples(const MetricSamples& a, const MetricSamples& b, bool same_folds, double alpha = 0.05);

/// Two-sided p-value of Student's t with df degrees of freedom.
double student_t_two_sided_p(double t, double df);

/// The results table of runs: long format CSV with one row per (label, model, metric).
std::string results_csv(const std::vector<RunRecord>& runs);
/// A terminal table: rows label x model, columns the main metrics as "mean +- std".
std::string results_text(const std::vector<RunRecord>& runs, size_t max_metrics = 5);

struct Comparison {
  std::vector<RunRecord> runs;    ///< runs[0] is the baseline
  Json to_json() const;
  std::string to_csv() const;
  std::string to_text() const;
};
Comparison compare_runs(std::vector<RunRecord> runs);

}  // namespace songlines::runs
