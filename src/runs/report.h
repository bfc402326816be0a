// `songlines report`: one self-contained HTML file per run or sweep (inline CSS, SVG and a little JS; images
// and audio as base64 data URIs; nothing fetched from a network). A location run gets a metrics table, a world
// map of true and predicted places with error lines coloured per country, the error CDF, a per-country error
// table and learning curves; a generative run gets its metrics, learning curves and each sample's spectrogram
// (samples/<name>.png when present) with an audio player. A sweep report holds the results table and links to
// each trial's report. A script at the end checks that every section rendered and then sets the page title to
// "songlines report: ready" and adds <div id="report-ready">, which the browser test looks for.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace songlines::runs {

/// HTML of a run directory's report. InputError when dir is not a finished run.
std::string render_run_report(const std::filesystem::path& run_dir);

/// HTML of a sweep directory's report; with write_trial_reports, each complete trial's report.html is written
/// too so that the links resolve.
std::string render_sweep_report(const std::filesystem::path& sweep_dir, bool write_trial_reports);

/// Writes the report of a run or sweep directory to output (default dir/report.html) atomically; returns the
/// path written.
std::filesystem::path write_report(const std::filesystem::path& dir, const std::filesystem::path& output = {});

/// One finished run shown on a report of several (the quickstart's).
struct ReportPart {
  std::string title;           ///< "Location model on the GOM table"
  std::string what;            ///< a sentence on what the run did
  std::filesystem::path dir;   ///< run directory; its own report is linked as <dir>/report.html
};

/// One page over several finished runs: per part, its metrics table and a link to its own report (relative to
/// base_dir, where the page is written); a generative part's samples are embedded (spectrograms and players).
std::string render_parts_report(const std::string& title, const std::string& subtitle,
                                const std::vector<ReportPart>& parts, const std::filesystem::path& base_dir);

/// RFC 4648 base64 of bytes.
std::string base64_encode(const std::string& bytes);

}  // namespace songlines::runs
