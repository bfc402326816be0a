#include "runs/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <numbers>
#include <set>
#include <sstream>

#include "core/atomic_file.h"
#include "core/config.h"
#include "core/error.h"
#include "runs/results.h"
#include "core/csv.h"
#include "geo/gazetteer.h"
#include "geo/great_circle.h"

namespace songlines::runs {

namespace fs = std::filesystem;

namespace {

// Map tracks drawn per model: repeat 0 holds each track once; beyond this the SVG gets heavy for a browser.
constexpr size_t kMaxMapTracks = 3000;
// Points kept per CDF curve (evenly spaced quantiles).
constexpr size_t kCdfPoints = 200;
// Half the Earth's circumference (km): the largest possible great-circle error.
constexpr double kMaxErrorKm = std::numbers::pi * geo::kEarthRadiusKm;
const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                          "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"};

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string num(double v, int prec = 1) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw InputError(p.string(), "cannot read");
  std::ostringstream o;
  o << in.rdbuf();
  return o.str();
}

// A country's colour: a hue from a stable hash of its code, so the same country has the same colour in every
// report.
std::string country_colour(const std::string& iso2) {
  uint32_t h = 2166136261u;
  for (unsigned char c : iso2) h = (h ^ c) * 16777619u;
  return "hsl(" + std::to_string(h % 360) + ",70%," + std::to_string(35 + (h / 360) % 20) + "%)";
}

struct Prediction {
  std::string track, model, country, predicted_country;
  int repeat = 0;
  double lat = 0, lon = 0, plat = 0, plon = 0, error_km = 0;
};

std::vector<Prediction> read_predictions(const fs::path& file) {
  std::vector<Prediction> out;
  if (!fs::exists(file)) return out;
  auto table = read_csv(file.string());
  auto col = [&](const std::string& name) -> int {
    for (size_t i = 0; i < table.header.size(); ++i)
      if (table.header[i] == name) return static_cast<int>(i);
    throw InputError(file.string(), "no column \"" + name + "\"");
  };
  const int c_id = col("track_id"), c_model = col("model"), c_rep = col("repeat"), c_lat = col("latitude"),
            c_lon = col("longitude"), c_plat = col("predicted_latitude"), c_plon = col("predicted_longitude"),
            c_err = col("error_km"), c_country = col("country"), c_pc = col("predicted_country");
  for (const auto& r : table.rows) {
    Prediction p;
    p.track = r.at(c_id);
    p.model = r.at(c_model);
    p.repeat = std::stoi(r.at(c_rep));
    p.lat = std::stod(r.at(c_lat));
    p.lon = std::stod(r.at(c_lon));
    p.plat = std::stod(r.at(c_plat));
    p.plon = std::stod(r.at(c_plon));
    p.error_km = std::stod(r.at(c_err));
    p.country = r.at(c_country);
    p.predicted_country = r.at(c_pc);
    out.push_back(std::move(p));
  }
  return out;
}

// ---- SVG pieces -------------------------------------------------------------------------------------------

double nice_step(double range, int target) {
  double raw = range / target;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * mag >= raw) return m * mag;
  return 10 * mag;
}

struct Series {
  std::string name, colour;
  std::vector<double> x, y;
};

// A line chart with axes, ticks and a legend. Series with no finite points are dropped.
std::string line_chart(const std::vector<Series>& series, const std::string& xlabel, const std::string& ylabel,
                       int w = 560, int h = 320) {
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const auto& s : series)
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, s.y[i]), y1 = std::max(y1, s.y[i]);
    }
  if (!std::isfinite(x0)) return "<p class=\"note\">no data</p>";
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1;
  const double pad = 0.04 * (y1 - y0);
  y0 -= pad, y1 += pad;
  const int L = 64, R = 12, T = 12, B = 44;
  auto X = [&](double x) { return L + (x - x0) / (x1 - x0) * (w - L - R); };
  auto Y = [&](double y) { return h - B - (y - y0) / (y1 - y0) * (h - T - B); };
  std::ostringstream o;
  o << "<svg class=\"chart\" viewBox=\"0 0 " << w << " " << h << "\" width=\"" << w << "\" height=\"" << h
    << "\" role=\"img\">";
  o << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << w - L - R << "\" height=\"" << h - T - B
    << "\" fill=\"#fff\" stroke=\"#ccc\"/>";
  const double xs = nice_step(x1 - x0, 6), ys = nice_step(y1 - y0, 5);
  for (double v = std::ceil(x0 / xs) * xs; v <= x1 + 1e-9 * xs; v += xs)
    o << "<line x1=\"" << num(X(v)) << "\" x2=\"" << num(X(v)) << "\" y1=\"" << T << "\" y2=\"" << h - B
      << "\" stroke=\"#eee\"/><text x=\"" << num(X(v)) << "\" y=\"" << h - B + 16
      << "\" text-anchor=\"middle\" class=\"tick\">" << num(v, xs < 1 ? 2 : 0) << "</text>";
  for (double v = std::ceil(y0 / ys) * ys; v <= y1 + 1e-9 * ys; v += ys) {
    if (std::fabs(v) < 1e-9 * ys) v = 0;  // no "-0.00" tick
    o << "<line x1=\"" << L << "\" x2=\"" << w - R << "\" y1=\"" << num(Y(v)) << "\" y2=\"" << num(Y(v))
      << "\" stroke=\"#eee\"/><text x=\"" << L - 6 << "\" y=\"" << num(Y(v) + 4)
      << "\" text-anchor=\"end\" class=\"tick\">" << num(v, ys < 0.1 ? 3 : (ys < 1 ? 2 : 0)) << "</text>";
  }
  o << "<text x=\"" << (L + w - R) / 2 << "\" y=\"" << h - 8 << "\" text-anchor=\"middle\" class=\"axis\">"
    << esc(xlabel) << "</text><text transform=\"translate(14," << (T + h - B) / 2
    << ") rotate(-90)\" text-anchor=\"middle\" class=\"axis\">" << esc(ylabel) << "</text>";
  int li = 0;
  for (const auto& s : series) {
    std::ostringstream pts;
    for (size_t i = 0; i < s.x.size(); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) pts << num(X(s.x[i])) << "," << num(Y(s.y[i])) << " ";
    o << "<polyline fill=\"none\" stroke=\"" << s.colour << "\" stroke-width=\"1.8\" points=\"" << pts.str()
      << "\"><title>" << esc(s.name) << "</title></polyline>";
    o << "<rect x=\"" << L + 10 << "\" y=\"" << T + 8 + 16 * li << "\" width=\"12\" height=\"3\" fill=\"" << s.colour
      << "\"/><text x=\"" << L + 26 << "\" y=\"" << T + 13 + 16 * li << "\" class=\"legend\">" << esc(s.name)
      << "</text>";
    ++li;
  }
  o << "</svg>";
  return o.str();
}

// Equirectangular world: x = (lon + 180) * s, y = (90 - lat) * s.
constexpr double kMapScale = 2.5;
double mx(double lon) { return (lon + 180) * kMapScale; }
double my(double lat) { return (90 - lat) * kMapScale; }

std::string map_base() {
  std::ostringstream o;
  const double W = 360 * kMapScale, H = 180 * kMapScale;
  o << "<rect width=\"" << W << "\" height=\"" << H << "\" fill=\"#eef4f8\"/>";
  o << "<g stroke=\"#c9d6e0\" stroke-width=\"0.6\">";
  for (int lon = -180; lon <= 180; lon += 30)
    o << "<line x1=\"" << mx(lon) << "\" x2=\"" << mx(lon) << "\" y1=\"0\" y2=\"" << H << "\"/>";
  for (int lat = -60; lat <= 60; lat += 30)
    o << "<line x1=\"0\" x2=\"" << W << "\" y1=\"" << my(lat) << "\" y2=\"" << my(lat) << "\""
      << (lat == 0 ? " stroke=\"#a9bccb\"" : "") << "/>";
  o << "</g>";
  // No coastline data ships with the project: the gazetteer's country centres stand in as a faint land hint.
  o << "<g fill=\"#d9cfbf\" opacity=\"0.8\" class=\"land\">";
  for (const auto& c : geo::Gazetteer::builtin().countries())
    o << "<circle cx=\"" << num(mx(c.centre.lon)) << "\" cy=\"" << num(my(c.centre.lat)) << "\" r=\"4\"><title>"
      << esc(c.name) << "</title></circle>";
  o << "</g>";
  return o.str();
}

// Error lines; one that is shorter across the antimeridian is drawn twice, shifted by 360 degrees, and the
// SVG viewport clips each copy at the map's edge.
std::string error_line(const Prediction& p, const std::string& colour) {
  double plon = p.plon;
  std::ostringstream o;
  auto seg = [&](double a_lon, double b_lon) {
    o << "<line x1=\"" << num(mx(a_lon)) << "\" y1=\"" << num(my(p.lat)) << "\" x2=\"" << num(mx(b_lon))
      << "\" y2=\"" << num(my(p.plat)) << "\" stroke=\"" << colour << "\"/>";
  };
  if (plon - p.lon > 180) {
    seg(p.lon, plon - 360);
    seg(p.lon + 360, plon);
  } else if (p.lon - plon > 180) {
    seg(p.lon, plon + 360);
    seg(p.lon - 360, plon);
  } else {
    seg(p.lon, plon);
  }
  return o.str();
}

const char* kStyle = R"(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1d3557;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;opacity:.85}main{padding:8px 28px 40px;max-width:1320px}
section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:14px 18px;margin:16px 0}
h2{font-size:17px;margin:0 0 10px}table{border-collapse:collapse;font-variant-numeric:tabular-nums}
td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:right}th{background:#f3f5f7}
td:first-child,th:first-child,td.l,th.l{text-align:left}.note{color:#666;font-size:12px}
.tick{font-size:10px;fill:#555}.axis{font-size:12px;fill:#333}.legend{font-size:11px;fill:#333}
.map{width:100%;height:auto;border:1px solid #ddd}.charts{display:flex;flex-wrap:wrap;gap:16px}
.scroll{max-height:420px;overflow:auto}figure{display:inline-block;margin:8px;vertical-align:top}
figure img{max-width:420px;display:block;border:1px solid #ddd}figcaption{font-size:12px;color:#444}
tr.best td{font-weight:600}.sig{color:#b00020;font-weight:600}
)";

// Checks every section rendered (an SVG with a non-empty box, a table with rows, or players), then marks the
// page ready; a section that did not render is named in #report-error instead.
const char* kReadyScript = R"(
<script>
(function () {
  var bad = [], ok = 0;
  document.querySelectorAll('section[data-section]').forEach(function (s) {
    var svg = s.querySelector('svg'), rows = s.querySelectorAll('tr').length, media = s.querySelectorAll('audio,img,a').length;
    var drawn = svg ? (svg.getBoundingClientRect().width > 0 && svg.childElementCount > 0) : (rows > 1 || media > 0);
    if (drawn) ok++; else bad.push(s.dataset.section);
  });
  var sel = document.getElementById('model-select');
  if (sel) {
    var show = function () {
      document.querySelectorAll('[data-model]').forEach(function (e) {
        e.style.display = e.dataset.model === sel.value ? '' : 'none';
      });
    };
    sel.addEventListener('change', show);
    show();
  }
  var m = document.createElement('div');
  if (bad.length === 0 && ok > 0) {
    m.id = 'report-ready';
    document.title = 'songlines report: ready';
  } else {
    m.id = 'report-error';
    document.title = 'songlines report: incomplete';
  }
  m.setAttribute('data-sections', String(ok));
  m.textContent = bad.length ? 'sections not rendered: ' + bad.join(', ') : '';
  document.body.appendChild(m);
})();
</script>
)";

std::string page(const std::string& title, const std::string& subtitle, const std::string& body) {
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + esc(title) +
         "</title><meta name=\"viewport\" content=\"width=device-width\"><style>" + kStyle +
         "</style></head><body><header><h1>" + esc(title) + "</h1><p>" + esc(subtitle) + "</p></header><main>" +
         body + "</main>" + kReadyScript + "</body></html>\n";
}

std::string section(const std::string& id, const std::string& heading, const std::string& content) {
  return "<section id=\"sec-" + id + "\" data-section=\"" + id + "\"><h2>" + esc(heading) + "</h2>" + content +
         "</section>";
}

std::string fmt_metric(double v, const std::string& metric) {
  if (higher_is_better(metric)) return num(v, 3);
  // Distances are meaningful to the kilometre; other quantities (losses, NMSE) need significant digits.
  if (metric.size() > 3 && metric.compare(metric.size() - 3, 3, "_km") == 0) return num(v, 1);
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

std::string metrics_table(const std::vector<RunRecord>& runs, const std::string& best_model = "",
                          const std::map<std::string, std::string>& links = {}) {
  auto metrics = metric_order(runs);
  std::ostringstream o;
  o << "<div class=\"scroll\"><table><tr><th>run</th><th class=\"l\">model</th>";
  for (const auto& m : metrics) o << "<th>" << esc(m) << "</th>";
  o << "<th>n</th></tr>";
  for (const auto& r : runs)
    for (const auto& [model, ms] : r.samples) {
      o << "<tr" << (model == best_model ? " class=\"best\"" : "") << "><td class=\"l\">";
      if (auto it = links.find(r.label); it != links.end())
        o << "<a href=\"" << esc(it->second) << "\">" << esc(r.label) << "</a>";
      else
        o << esc(r.label);
      o << "</td><td class=\"l\">" << esc(model) << "</td>";
      int64_t n = 0;
      for (const auto& m : metrics) {
        auto it = ms.find(m);
        if (it == ms.end()) {
          o << "<td>-</td>";
          continue;
        }
        auto s = summarize(it->second.values);
        n = s.n;
        o << "<td>" << fmt_metric(s.mean, m) << " &plusmn; " << fmt_metric(s.std, m) << "</td>";
      }
      o << "<td>" << n << "</td></tr>";
    }
  o << "</table></div><p class=\"note\">mean &plusmn; sample std over seeds, repeats and folds (n evaluation units)."
    << "</p>";
  return o.str();
}

// Learning curves from metrics.jsonl: lines with "epoch" (location: mean loss over repeats and folds per model)
// or "step" (generative: every numeric field per step).
std::string learning_curves(const fs::path& jsonl) {
  if (!fs::exists(jsonl)) return "";
  std::map<std::string, std::map<double, std::pair<double, int>>> epoch_loss;  // model -> epoch -> (sum, n)
  std::map<std::string, std::map<double, double>> step_values;                 // field -> step -> value
  std::ifstream in(jsonl);
  std::string line;
  while (std::getline(in, line)) {
    Json j;
    try {
      j = Json::parse(line);
    } catch (const Json::parse_error&) {
      continue;  // a torn last line of a killed run
    }
    if (!j.is_object()) continue;
    if (j.contains("epoch") && j.contains("loss") && j["loss"].is_number()) {
      auto& e = epoch_loss[j.value("model", std::string("model"))][j["epoch"].get<double>()];
      e.first += j["loss"].get<double>();
      e.second += 1;
    } else if (j.contains("step") && j["step"].is_number()) {
      for (const auto& [k, v] : j.items())
        if (k != "step" && v.is_number()) step_values[k][j["step"].get<double>()] = v.get<double>();
    }
  }
  std::ostringstream o;
  if (!epoch_loss.empty()) {
    std::vector<Series> s;
    int i = 0;
    for (const auto& [model, epochs] : epoch_loss) {
      Series se{model, kPalette[i++ % 10], {}, {}};
      for (const auto& [e, v] : epochs) se.x.push_back(e), se.y.push_back(v.first / v.second);
      s.push_back(se);
    }
    o << line_chart(s, "epoch", "training loss (mean over folds)");
  }
  // One chart per generative field: losses and metrics have different scales.
  int i = 0;
  for (const auto& [field, steps] : step_values) {
    Series se{field, kPalette[i++ % 10], {}, {}};
    for (const auto& [st, v] : steps) se.x.push_back(st), se.y.push_back(v);
    o << line_chart({se}, "step", field, 420, 260);
  }
  if (o.str().empty()) return "";
  return "<div class=\"charts\">" + o.str() + "</div>";
}

std::string samples_section(const fs::path& run_dir) {
  const fs::path dir = run_dir / "samples";
  if (!fs::is_directory(dir)) return "";
  std::map<std::string, std::string> captions;  // sample name -> place from samples/places.csv
  if (fs::exists(dir / "places.csv")) {
    auto t = read_csv((dir / "places.csv").string());
    for (const auto& r : t.rows) {
      if (r.empty()) continue;
      std::string c;
      for (size_t i = 1; i < r.size() && i < t.header.size(); ++i) c += (i > 1 ? ", " : "") + t.header[i] + " " + r[i];
      captions[r[0]] = c;
    }
  }
  std::vector<fs::path> wavs;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".wav") wavs.push_back(e.path());
  std::sort(wavs.begin(), wavs.end());
  if (wavs.empty()) return "";
  std::ostringstream o;
  for (const auto& w : wavs) {
    const std::string name = w.stem().string();
    o << "<figure><figcaption><b>" << esc(name) << "</b>";
    for (const auto& key : {name, w.filename().string()})
      if (auto it = captions.find(key); it != captions.end()) {
        o << " &middot; " << esc(it->second);
        break;
      }
    o << "</figcaption>";
    auto png = w;
    png.replace_extension(".png");
    if (fs::exists(png))
      o << "<img alt=\"spectrogram of " << esc(name) << "\" src=\"data:image/png;base64," << base64_encode(read_bytes(png))
        << "\">";
    o << "<audio controls preload=\"none\" src=\"data:audio/wav;base64," << base64_encode(read_bytes(w))
      << "\"></audio></figure>";
  }
  return o.str();
}

std::string location_sections(const RunRecord& run, const std::vector<Prediction>& preds) {
  const auto& gaz = geo::Gazetteer::builtin();
  std::vector<std::string> models;
  for (const auto& p : preds)
    if (std::find(models.begin(), models.end(), p.model) == models.end()) models.push_back(p.model);
  std::string shown = run.metrics.value("best_model", models.empty() ? std::string() : models.front());
  if (std::find(models.begin(), models.end(), shown) == models.end() && !models.empty()) shown = models.front();

  std::ostringstream body;
  // Map: repeat 0 of each model (every track once), one group per model, switched by the selector.
  std::ostringstream map;
  map << "<p><label>model <select id=\"model-select\">";
  for (const auto& m : models)
    map << "<option value=\"" << esc(m) << "\"" << (m == shown ? " selected" : "") << ">" << esc(m) << "</option>";
  map << "</select></label> <span class=\"note\">dots: true places; rings: predictions (repeat 0, every track "
         "once); lines join them; colour: true country. Land hint: country centres (no coastline data in the "
         "project).</span></p>";
  map << "<svg class=\"map\" viewBox=\"0 0 " << 360 * kMapScale << " " << 180 * kMapScale << "\">" << map_base();
  for (const auto& m : models) {
    std::ostringstream lines, truth, pred;
    size_t drawn = 0;
    for (const auto& p : preds) {
      if (p.model != m || p.repeat != 0 || drawn >= kMaxMapTracks) continue;
      ++drawn;
      const std::string c = country_colour(p.country);
      lines << error_line(p, c);
      truth << "<circle cx=\"" << num(mx(p.lon)) << "\" cy=\"" << num(my(p.lat)) << "\" r=\"2.4\" fill=\"" << c
            << "\"><title>" << esc(p.track) << " " << esc(p.country) << ": " << num(p.error_km, 0)
            << " km</title></circle>";
      pred << "<circle cx=\"" << num(mx(p.plon)) << "\" cy=\"" << num(my(p.plat)) << "\" r=\"2\" fill=\"none\" stroke=\""
           << c << "\"/>";
    }
    map << "<g data-model=\"" << esc(m) << "\"><g stroke-width=\"0.7\" opacity=\"0.35\">" << lines.str() << "</g>"
        << pred.str() << truth.str() << "</g>";
  }
  map << "</svg>";
  body << section("map", "World map: true and predicted places", map.str());

  // Error CDF over every prediction (all repeats) per model.
  std::vector<Series> cdf;
  for (size_t i = 0; i < models.size(); ++i) {
    std::vector<double> e;
    for (const auto& p : preds)
      if (p.model == models[i]) e.push_back(p.error_km);
    std::sort(e.begin(), e.end());
    Series s{models[i], kPalette[i % 10], {0}, {0}};
    const size_t steps = std::min(kCdfPoints, e.size());
    for (size_t k = 1; k <= steps; ++k) {
      size_t idx = k * e.size() / steps - 1;
      s.x.push_back(e[idx]);
      s.y.push_back(static_cast<double>(idx + 1) / static_cast<double>(e.size()));
    }
    s.x.push_back(kMaxErrorKm);
    s.y.push_back(1);
    cdf.push_back(s);
  }
  body << section("cdf", "Error CDF (all repeats)",
                  line_chart(cdf, "great-circle error (km)", "share of tracks within", 760, 360));

  // Per-country errors per model (all repeats).
  std::ostringstream ct;
  for (const auto& m : models) {
    std::map<std::string, std::vector<const Prediction*>> by;
    for (const auto& p : preds)
      if (p.model == m) by[p.country].push_back(&p);
    std::vector<std::pair<std::string, std::vector<const Prediction*>>> rows(by.begin(), by.end());
    std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.size() > b.second.size(); });
    ct << "<div class=\"scroll\" data-model=\"" << esc(m) << "\"><table><tr><th>country</th><th class=\"l\">name</th><th>predictions</th>"
       << "<th>mean km</th><th>median km</th><th>country accuracy</th></tr>";
    for (const auto& [iso, ps] : rows) {
      std::vector<double> e;
      int correct = 0;
      for (const auto* p : ps) e.push_back(p->error_km), correct += p->predicted_country == p->country;
      std::sort(e.begin(), e.end());
      double mean = 0;
      for (double x : e) mean += x;
      mean /= static_cast<double>(e.size());
      double median = e.size() % 2 ? e[e.size() / 2] : 0.5 * (e[e.size() / 2 - 1] + e[e.size() / 2]);
      const auto* c = gaz.find_by_iso2(iso);
      ct << "<tr><td class=\"l\"><span style=\"color:" << country_colour(iso) << "\">&#9679;</span> " << esc(iso)
         << "</td><td class=\"l\">" << esc(c ? c->name : "") << "</td><td>" << e.size() << "</td><td>" << num(mean, 0)
         << "</td><td>" << num(median, 0) << "</td><td>" << num(static_cast<double>(correct) / static_cast<double>(e.size()), 3)
         << "</td></tr>";
    }
    ct << "</table></div>";
  }
  body << section("countries", "Errors per true country (model chosen above)", ct.str());
  return body.str();
}

}  // namespace

std::string base64_encode(const std::string& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (i < bytes.size()) {
    uint32_t v = uint8_t(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= uint8_t(bytes[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string render_run_report(const fs::path& run_dir) {
  RunRecord run = load_run(run_dir);
  std::ostringstream body;
  body << section("metrics", "Metrics", metrics_table({run}, run.metrics.value("best_model", std::string())));
  if (!run.generative) body << location_sections(run, read_predictions(run_dir / "predictions.csv"));
  if (auto curves = learning_curves(run_dir / "metrics.jsonl"); !curves.empty())
    body << section("curves", "Learning curves", curves);
  if (auto samples = samples_section(run_dir); !samples.empty())
    body << section("samples", "Generated samples (spectrogram and audio)", samples);
  body << "<section><h2>Config</h2><pre class=\"note\">" << esc(run.config.dump(2)) << "</pre></section>";
  std::string subtitle = fs::absolute(run_dir).lexically_normal().string();
  if (run.metrics.contains("tracks"))
    subtitle += " · " + std::to_string(run.metrics["tracks"].get<int64_t>()) + " tracks, " +
                std::to_string(run.metrics.value("folds", 0)) + " folds x " + std::to_string(run.metrics.value("repeats", 0)) +
                " repeats";
  return page("songlines report: " + run.config.value("experiment", run.label), subtitle, body.str());
}

std::string render_parts_report(const std::string& title, const std::string& subtitle,
                                const std::vector<ReportPart>& parts, const fs::path& base_dir) {
  std::ostringstream body;
  int k = 0;
  for (const auto& p : parts) {
    RunRecord run = load_run(p.dir);
    const std::string link = fs::relative(p.dir / "report.html", base_dir).generic_string();
    std::ostringstream content;
    content << "<p>" << esc(p.what) << " <a href=\"" << esc(link) << "\">Full report</a> &middot; <code>"
            << esc(fs::absolute(p.dir).lexically_normal().string()) << "</code></p>"
            << metrics_table({run}, run.metrics.value("best_model", std::string()));
    if (run.generative)
      if (auto samples = samples_section(p.dir); !samples.empty()) content << samples;
    body << section("part" + std::to_string(k++), p.title, content.str());
  }
  return page(title, subtitle, body.str());
}

std::string render_sweep_report(const fs::path& sweep_dir, bool write_trial_reports) {
  Json manifest = load_json_file((sweep_dir / "sweep.json").string());
  std::vector<std::string> incomplete;
  auto groups = load_sweep_groups(sweep_dir, &incomplete);
  std::ostringstream trials;
  trials << "<div class=\"scroll\"><table><tr><th>#</th><th class=\"l\">trial</th><th class=\"l\">overrides</th><th>status</th><th>best model</th>"
         << "<th>mean km</th></tr>";
  for (const auto& t : manifest.at("trials")) {
    const std::string name = t.at("name").get<std::string>();
    const fs::path dir = sweep_dir / t.at("dir").get<std::string>();
    std::string overrides;
    for (const auto& o : t.at("overrides")) overrides += (overrides.empty() ? "" : " ") + o.get<std::string>();
    trials << "<tr><td>" << t.at("index").get<int>() << "</td><td class=\"l\">";
    if (fs::exists(dir / "metrics.json")) {
      if (write_trial_reports) write_file_atomic(dir / "report.html", render_run_report(dir));
      Json m = load_json_file((dir / "metrics.json").string());
      std::string best = m.value("best_model", std::string());
      std::string mean = "-";
      if (!best.empty() && m["models"][best].contains("mean_km"))
        mean = num(m["models"][best]["mean_km"]["mean"].get<double>(), 1);
      trials << "<a href=\"" << esc(t.at("dir").get<std::string>() + "/report.html") << "\">" << esc(name)
             << "</a></td><td class=\"l\"><code>" << esc(overrides) << "</code></td><td>complete</td><td>" << esc(best)
             << "</td><td>" << mean << "</td></tr>";
    } else {
      trials << esc(name) << "</td><td class=\"l\"><code>" << esc(overrides)
             << "</code></td><td>" << (fs::exists(dir) ? "partial or failed" : "not started") << "</td><td>-</td><td>-</td></tr>";
    }
  }
  trials << "</table></div>";
  std::ostringstream body;
  body << section("results", "Results per trial group (seeds pooled)",
                  groups.empty() ? std::string("<p>no complete trials yet</p>") : metrics_table(groups));
  body << section("trials", "Trials", trials.str());
  return page("songlines sweep: " + manifest.value("name", std::string()),
              fs::absolute(sweep_dir).lexically_normal().string() + " · " +
                  std::to_string(manifest.at("trials").size()) + " trials, " + std::to_string(incomplete.size()) +
                  " incomplete",
              body.str());
}

fs::path write_report(const fs::path& dir, const fs::path& output) {
  const fs::path out = output.empty() ? dir / "report.html" : output;
  std::string html = is_sweep_dir(dir) ? render_sweep_report(dir, true) : render_run_report(dir);
  write_file_atomic(out, html);
  return out;
}

}  // namespace songlines::runs
