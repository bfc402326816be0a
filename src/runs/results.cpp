#include "runs/results.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "core/csv.h"
#include "core/error.h"

namespace songlines::runs {

namespace fs = std::filesystem;

namespace {

// The per-fold metrics a location run writes to metrics.jsonl (train/metrics.h), in display order.
const std::vector<std::string> kLocationMetrics = {"mean_km",     "median_km",   "within_500",
                                                   "within_1000", "within_2500", "country_accuracy"};

void flatten_numbers(const Json& j, const std::string& prefix, std::map<std::string, double>& out) {
  if (j.is_number()) {
    out[prefix] = j.get<double>();
  } else if (j.is_object()) {
    for (const auto& [k, v] : j.items()) flatten_numbers(v, prefix.empty() ? k : prefix + "." + k, out);
  }
}

std::string fmt(double v, const std::string& metric) {
  char buf[64];
  bool share = metric.rfind("within_", 0) == 0 || metric.find("accuracy") != std::string::npos;
  const bool km = metric.size() > 3 && metric.compare(metric.size() - 3, 3, "_km") == 0;
  std::snprintf(buf, sizeof buf, share ? "%.3f" : (km ? "%.1f" : "%.4g"), v);
  return buf;
}

// Regularized incomplete beta I_x(a, b) by its continued fraction (modified Lentz), the standard route to the
// Student t tail: P(|T| > t) = I_{df/(df+t^2)}(df/2, 1/2).
double incomplete_beta(double x, double a, double b) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  if (x > (a + 1) / (a + b + 2)) return 1 - incomplete_beta(1 - x, b, a);
  const double front = std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) +
                                b * std::log1p(-x)) / a;
  constexpr double kTiny = 1e-300;
  double c = 1, d = 1 - (a + b) * x / (a + 1);
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1 / d;
  double f = d;
  for (int m = 1; m <= 5000; ++m) {
    double num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
    d = 1 + num * d;
    c = 1 + num / c;
    d = 1 / (std::fabs(d) < kTiny ? kTiny : d);
    c = std::fabs(c) < kTiny ? kTiny : c;
    f *= c * d;
    num = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1));
    d = 1 + num * d;
    c = 1 + num / c;
    d = 1 / (std::fabs(d) < kTiny ? kTiny : d);
    c = std::fabs(c) < kTiny ? kTiny : c;
    double delta = c * d;
    f *= delta;
    if (std::fabs(delta - 1) < 1e-14) break;
  }
  return front * f;
}

}  // namespace

double student_t_two_sided_p(double t, double df) {
  if (!std::isfinite(t)) return 0;
  if (df <= 0) return 1;
  return incomplete_beta(df / (df + t * t), df / 2, 0.5);
}

Summary summarize(const std::vector<double>& v) {
  Summary s;
  s.n = static_cast<int64_t>(v.size());
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  if (v.size() > 1) {
    double sq = 0;
    for (double x : v) sq += (x - s.mean) * (x - s.mean);
    s.std = std::sqrt(sq / static_cast<double>(v.size() - 1));
  }
  return s;
}

bool higher_is_better(const std::string& metric) {
  return metric.rfind("within_", 0) == 0 || metric.find("accuracy") != std::string::npos;
}

RunRecord load_run(const fs::path& dir) {
  RunRecord r;
  r.dir = dir;
  r.label = fs::path(dir).lexically_normal().filename().string();
  if (r.label.empty()) r.label = fs::path(dir).lexically_normal().parent_path().filename().string();
  if (!fs::exists(dir / "metrics.json"))
    throw InputError(dir.string(), "not a finished run directory (no metrics.json)");
  r.metrics = load_json_file((dir / "metrics.json").string());
  if (fs::exists(dir / "config.json")) r.config = load_json_file((dir / "config.json").string());
  const uint64_t seed = r.config.value("seed", uint64_t{0});
  const std::string s = "s" + std::to_string(seed);
  r.generative = !(r.metrics.contains("models") && r.metrics["models"].is_object());
  if (r.generative) {
    std::map<std::string, double> flat;
    flatten_numbers(r.metrics, "", flat);
    for (const auto& [k, v] : flat) {
      if (!std::isfinite(v)) continue;
      r.samples["vae"][k].keys.push_back(s);
      r.samples["vae"][k].values.push_back(v);
    }
    r.fold_signature = r.config.contains("data") ? r.config["data"].dump() : "";
    return r;
  }
  // metrics.jsonl holds one line per (model, repeat, fold) with the fold's metrics; a resumed run repeats the
  // lines of folds it had already finished, so the last line of each unit wins.
  std::map<std::string, std::map<std::string, std::map<std::string, double>>> by_unit;  // model, metric, unit
  std::ifstream in(dir / "metrics.jsonl");
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    Json j;
    try {
      j = Json::parse(line);
    } catch (const Json::parse_error&) {
      // A run killed mid-write leaves a torn last line; anything else is corrupt.
      if (in.peek() == EOF) break;
      throw InputError((dir / "metrics.jsonl").string(), "line " + std::to_string(line_no) + " is not JSON");
    }
    if (!j.contains("fold") || !j.contains("model") || j.contains("epoch") || !j.contains("mean_km")) continue;
    std::string unit = s + "-r" + std::to_string(j.value("repeat", 0)) + "-f" + std::to_string(j["fold"].get<int>());
    for (const auto& m : kLocationMetrics)
      if (j.contains(m) && j[m].is_number()) by_unit[j["model"].get<std::string>()][m][unit] = j[m].get<double>();
  }
  for (const auto& [model, metrics] : by_unit)
    for (const auto& [metric, units] : metrics)
      for (const auto& [unit, v] : units) {
        r.samples[model][metric].keys.push_back(unit);
        r.samples[model][metric].values.push_back(v);
      }
  r.fold_signature = r.config.value("data", Json()).dump() + r.config.value("evaluation", Json()).dump();
  return r;
}

RunRecord pool_runs(const std::vector<RunRecord>& runs, const std::string& label) {
  if (runs.empty()) throw Error("pool_runs: no runs for " + label);
  RunRecord p = runs.front();
  p.label = label;
  for (size_t i = 1; i < runs.size(); ++i) {
    if (runs[i].fold_signature != p.fold_signature) p.fold_signature = "(mixed)";
    for (const auto& [model, metrics] : runs[i].samples)
      for (const auto& [metric, s] : metrics) {
        auto& dst = p.samples[model][metric];
        dst.keys.insert(dst.keys.end(), s.keys.begin(), s.keys.end());
        dst.values.insert(dst.values.end(), s.values.begin(), s.values.end());
      }
  }
  return p;
}

bool is_sweep_dir(const fs::path& dir) { return fs::exists(dir / "sweep.json"); }

std::vector<RunRecord> load_sweep_groups(const fs::path& sweep_dir, std::vector<std::string>* incomplete) {
  Json manifest = load_json_file((sweep_dir / "sweep.json").string());
  std::vector<std::string> order;
  std::map<std::string, std::vector<RunRecord>> groups;
  for (const auto& t : manifest.at("trials")) {
    const std::string group = t.at("group").get<std::string>();
    if (std::find(order.begin(), order.end(), group) == order.end()) order.push_back(group);
    fs::path dir = sweep_dir / t.at("dir").get<std::string>();
    if (fs::exists(dir / "metrics.json")) {
      groups[group].push_back(load_run(dir));
    } else if (incomplete) {
      incomplete->push_back(t.at("name").get<std::string>());
    }
  }
  std::vector<RunRecord> out;
  for (const auto& g : order)
    if (!groups[g].empty()) out.push_back(pool_runs(groups[g], g));
  return out;
}

std::vector<std::string> metric_order(const std::vector<RunRecord>& runs) {
  std::set<std::string> all;
  for (const auto& r : runs)
    for (const auto& [model, metrics] : r.samples)
      for (const auto& [metric, s] : metrics) all.insert(metric);
  std::vector<std::string> out;
  for (const auto& m : kLocationMetrics)
    if (all.erase(m)) out.push_back(m);
  out.insert(out.end(), all.begin(), all.end());
  return out;
}

Difference compare_samples(const MetricSamples& a, const MetricSamples& b, bool same_folds, double alpha) {
  Difference d;
  auto sa = summarize(a.values), sb = summarize(b.values);
  d.delta = sb.mean - sa.mean;
  if (sa.n < 2 || sb.n < 2) return d;
  std::vector<std::string> ka = a.keys, kb = b.keys;
  std::sort(ka.begin(), ka.end());
  std::sort(kb.begin(), kb.end());
  if (same_folds && ka == kb && std::adjacent_find(ka.begin(), ka.end()) == ka.end()) {
    // Paired: both scored on the same folds, so fold difficulty cancels in the per-fold differences.
    std::map<std::string, double> va;
    for (size_t i = 0; i < a.keys.size(); ++i) va[a.keys[i]] = a.values[i];
    std::vector<double> diffs;
    for (size_t i = 0; i < b.keys.size(); ++i) diffs.push_back(b.values[i] - va[b.keys[i]]);
    auto sd = summarize(diffs);
    d.paired = true;
    d.df = static_cast<double>(sd.n - 1);
    d.stderr_ = sd.std / std::sqrt(static_cast<double>(sd.n));
  } else {
    const double va = sa.std * sa.std / static_cast<double>(sa.n), vb = sb.std * sb.std / static_cast<double>(sb.n);
    d.stderr_ = std::sqrt(va + vb);
    // Welch-Satterthwaite degrees of freedom.
    const double den = va * va / static_cast<double>(sa.n - 1) + vb * vb / static_cast<double>(sb.n - 1);
    d.df = den > 0 ? (va + vb) * (va + vb) / den : static_cast<double>(sa.n + sb.n - 2);
  }
  if (d.stderr_ > 0) {
    d.t = d.delta / d.stderr_;
    d.p = student_t_two_sided_p(d.t, d.df);
  } else {
    d.t = d.delta == 0 ? 0 : INFINITY;
    d.p = d.delta == 0 ? 1 : 0;
  }
  d.significant = d.p < alpha;
  return d;
}

std::string results_csv(const std::vector<RunRecord>& runs) {
  std::ostringstream o;
  o << "label,model,metric,n,mean,std\n";
  o.precision(10);
  for (const auto& r : runs)
    for (const auto& [model, metrics] : r.samples)
      for (const auto& metric : metric_order({r})) {
        auto it = metrics.find(metric);
        if (it == metrics.end()) continue;
        auto s = summarize(it->second.values);
        o << csv_field(r.label) << "," << csv_field(model) << "," << metric << "," << s.n << "," << s.mean << ","
          << s.std << "\n";
      }
  return o.str();
}

namespace {

std::string pad(const std::string& s, size_t w) { return s.size() >= w ? s : s + std::string(w - s.size(), ' '); }

std::string render_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  std::ostringstream o;
  for (size_t k = 0; k < rows.size(); ++k) {
    for (size_t i = 0; i < rows[k].size(); ++i) o << pad(rows[k][i], width[i] + 2);
    o << "\n";
    if (k == 0) {
      size_t total = 0;
      for (auto w : width) total += w + 2;
      o << std::string(total, '-') << "\n";
    }
  }
  return o.str();
}

std::string mean_std(const Summary& s, const std::string& metric) {
  return fmt(s.mean, metric) + " +- " + fmt(s.std, metric) + " (" + std::to_string(s.n) + ")";
}

}  // namespace

std::string results_text(const std::vector<RunRecord>& runs, size_t max_metrics) {
  auto metrics = metric_order(runs);
  if (metrics.size() > max_metrics) metrics.resize(max_metrics);
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> head{"run", "model"};
  for (const auto& m : metrics) head.push_back(m);
  rows.push_back(head);
  for (const auto& r : runs)
    for (const auto& [model, ms] : r.samples) {
      std::vector<std::string> row{r.label, model};
      for (const auto& m : metrics) {
        auto it = ms.find(m);
        row.push_back(it == ms.end() ? "-" : mean_std(summarize(it->second.values), m));
      }
      rows.push_back(row);
    }
  return render_table(rows);
}

Comparison compare_runs(std::vector<RunRecord> runs) {
  if (runs.size() < 2) throw UsageError("compare: need at least two runs (or a sweep with two complete groups)");
  Comparison c;
  c.runs = std::move(runs);
  return c;
}

namespace {

constexpr const char* kTestNote =
    "* marks a difference from the baseline (first column) beyond run-to-run spread: a paired t-test over "
    "identical evaluation folds when both runs share data, evaluation config and seeds, else Welch's t-test; "
    "two-sided p < 0.05";

struct Cell {
  const RunRecord* run;
  Summary s;
  Difference d;
  bool has = false;
};

// model, metric -> one cell per run (baseline first).
std::vector<std::tuple<std::string, std::string, std::vector<Cell>>> comparison_rows(const Comparison& c) {
  std::set<std::string> models;
  for (const auto& r : c.runs)
    for (const auto& [m, _] : r.samples) models.insert(m);
  std::vector<std::tuple<std::string, std::string, std::vector<Cell>>> out;
  const auto metrics = metric_order(c.runs);
  const auto& base = c.runs.front();
  for (const auto& model : models)
    for (const auto& metric : metrics) {
      std::vector<Cell> cells;
      bool any = false;
      const MetricSamples* bs = nullptr;
      if (auto m = base.samples.find(model); m != base.samples.end())
        if (auto s = m->second.find(metric); s != m->second.end()) bs = &s->second;
      for (size_t i = 0; i < c.runs.size(); ++i) {
        Cell cell{&c.runs[i], {}, {}, false};
        const auto& r = c.runs[i];
        if (auto m = r.samples.find(model); m != r.samples.end())
          if (auto s = m->second.find(metric); s != m->second.end()) {
            cell.has = any = true;
            cell.s = summarize(s->second.values);
            if (i > 0 && bs) {
              bool same = r.fold_signature == base.fold_signature && r.fold_signature != "(mixed)";
              cell.d = compare_samples(*bs, s->second, same);
            }
          }
        cells.push_back(cell);
      }
      if (any) out.emplace_back(model, metric, std::move(cells));
    }
  return out;
}

}  // namespace

std::string Comparison::to_text() const {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> head{"model", "metric"};
  for (const auto& r : runs) head.push_back(r.label);
  rows.push_back(head);
  for (const auto& [model, metric, cells] : comparison_rows(*this)) {
    std::vector<std::string> row{model, metric};
    for (size_t i = 0; i < cells.size(); ++i) {
      const auto& cell = cells[i];
      if (!cell.has) {
        row.push_back("-");
        continue;
      }
      std::string v = mean_std(cell.s, metric);
      if (i > 0 && cell.d.stderr_ > 0) {
        v += " " + std::string(cell.d.delta >= 0 ? "+" : "") + fmt(cell.d.delta, metric);
        if (cell.d.significant) v += (cell.d.delta > 0) == higher_is_better(metric) ? " *better" : " *worse";
      }
      row.push_back(v);
    }
    rows.push_back(row);
  }
  return render_table(rows) + kTestNote + "\n";
}

Json Comparison::to_json() const {
  Json rows = Json::array();
  for (const auto& [model, metric, cells] : comparison_rows(*this)) {
    Json rj = {{"model", model}, {"metric", metric}, {"higher_is_better", higher_is_better(metric)}, {"runs", Json::array()}};
    for (size_t i = 0; i < cells.size(); ++i) {
      const auto& cell = cells[i];
      Json cj = {{"label", cell.run->label}, {"dir", cell.run->dir.string()}};
      if (cell.has) {
        cj["n"] = cell.s.n;
        cj["mean"] = cell.s.mean;
        cj["std"] = cell.s.std;
        if (i > 0) {
          cj["delta"] = cell.d.delta;
          cj["stderr"] = cell.d.stderr_;
          cj["t"] = std::isfinite(cell.d.t) ? Json(cell.d.t) : Json();
          cj["df"] = cell.d.df;
          cj["p"] = cell.d.p;
          cj["test"] = cell.d.paired ? "paired-t" : "welch-t";
          cj["significant"] = cell.d.significant;
        }
      }
      rj["runs"].push_back(cj);
    }
    rows.push_back(rj);
  }
  return {{"baseline", runs.front().label}, {"alpha", 0.05}, {"test", kTestNote}, {"rows", rows}};
}

std::string Comparison::to_csv() const {
  std::ostringstream o;
  o.precision(10);
  o << "model,metric,label,n,mean,std,delta,p,test,significant\n";
  for (const auto& [model, metric, cells] : comparison_rows(*this))
    for (size_t i = 0; i < cells.size(); ++i) {
      const auto& cell = cells[i];
      if (!cell.has) continue;
      o << csv_field(model) << "," << metric << "," << csv_field(cell.run->label) << "," << cell.s.n << ","
        << cell.s.mean << "," << cell.s.std << ",";
      if (i > 0)
        o << cell.d.delta << "," << cell.d.p << "," << (cell.d.paired ? "paired-t" : "welch-t") << ","
          << (cell.d.significant ? 1 : 0);
      else
        o << ",,baseline,";
      o << "\n";
    }
  return o.str();
}

}  // namespace songlines::runs
