// docs/reliability.md for tables and training:
//  - a GOM table (or the seed CSV) with NaN or an infinity in a feature column is refused at import, naming the
//    file, the line and the column, both by import (read_feature_table) and by a run config's data.table path;
//  - checkpoints are written atomically: a full disk (a real small tmpfs) during a checkpoint gives an IoError
//    naming the file and the reason (libtorch's own writer ended in std::terminate) and leaves no partial file
//    under a checkpoint's name; a normal run leaves no temporaries and its checkpoints load.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

#include "core/error.h"
#include "support/test_support.h"
#include "synthetic_dataset.h"
#include "train/dataset.h"
#include "train/table_import.h"
#include "train/trainer.h"

namespace songlines::train {
namespace {

namespace fs = std::filesystem;
using songlines::testing::TempDir;
using songlines::testing::TmpfsMount;

// A GOM-format file (no header; `features` values, then latitude, longitude), 4 rows of seeded values, with
// `bad` written at (row, column) (both 1-based) when row > 0.
fs::path write_gom(const TempDir& tmp, const std::string& bad, int row, int column, int features = 6) {
  std::mt19937 rng(5);
  std::normal_distribution<double> v(0.0, 1.0);
  const double places[4][2] = {{48.85, 2.35}, {35.68, 139.69}, {-33.87, 151.21}, {-12.05, -77.04}};
  const auto path = tmp / "gom.txt";
  std::ofstream out(path);
  for (int r = 1; r <= 4; ++r) {
    for (int c = 1; c <= features; ++c) {
      if (r == row && c == column) out << bad << ",";
      else out << v(rng) << ",";
    }
    out << places[r - 1][0] << "," << places[r - 1][1] << "\n";
  }
  return path;
}

std::string import_error(const fs::path& file, TableFormat format) {
  try {
    read_feature_table(file, format);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(TableNonFinite, GomFeatureNanOrInfIsRefusedNamingFileLineAndColumn) {
  for (const std::string bad : {"nan", "NaN", "inf", "-inf", "Infinity", "1e999"}) {
    TempDir tmp;
    const auto path = write_gom(tmp, bad, 3, 5);
    const std::string e = import_error(path, TableFormat::kGom);
    EXPECT_NE(e.find(path.string() + ":3"), std::string::npos) << bad << ": " << e;
    EXPECT_NE(e.find("column 5"), std::string::npos) << bad << ": " << e;
    EXPECT_NE(e.find("non-finite value \"" + bad + "\""), std::string::npos) << bad << ": " << e;
  }
  // The same file with a finite value there imports all 4 rows.
  TempDir tmp;
  EXPECT_EQ(read_feature_table(write_gom(tmp, "0.5", 3, 5), TableFormat::kGom).tracks.size(), 4u);
}

TEST(TableNonFinite, SeedCsvFeatureNanIsRefusedNamingTheColumn) {
  TempDir tmp;
  std::ostringstream header, row;
  header << "track_id,Latitude,Longitude";
  row << "7,48.85,2.35";
  for (const auto& [prefix, dim] : std::vector<std::pair<std::string, int>>{
           {"MFCC", 20}, {"Chroma", 12}, {"Spectral Contrast", 7}, {"Tonnetz", 6}})
    for (int k = 1; k <= dim; ++k) {
      header << "," << prefix << k;
      row << "," << (prefix == "Chroma" && k == 4 ? "nan" : "0.25");
    }
  const auto path = tmp / "seed.csv";
  std::ofstream(path) << header.str() << "\n" << row.str() << "\n";
  const std::string e = import_error(path, TableFormat::kSeedCsv);
  EXPECT_NE(e.find(path.string() + ":2"), std::string::npos) << e;
  EXPECT_NE(e.find("column 27 (Chroma4)"), std::string::npos) << e;  // 3 + 20 MFCC + 4
}

using testing_data::synthetic;

std::vector<int64_t> all_rows(int64_t n) {
  std::vector<int64_t> r(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) r[static_cast<size_t>(i)] = i;
  return r;
}

// A model whose weights take ~1 MB (6 -> 512 -> 512 -> head), so its checkpoint cannot fit in what is left.
NeuralLocationEstimator big_model(int epochs, int checkpoint_every) {
  models::LocationModelOptions mo;
  mo.hidden_sizes = {512, 512};
  TrainOptions to;
  to.epochs = epochs;
  to.device = "cpu";
  to.batch_size = 16;
  to.checkpoint_every = checkpoint_every;
  to.seed = 2;
  return NeuralLocationEstimator(mo, to);
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename() != ".filler") out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(CheckpointDiskFull, ClearIoErrorAndNoPartialCheckpointFile) {
  TmpfsMount disk("2M");
  if (!disk.mounted()) GTEST_SKIP() << disk.skip_reason();
  disk.fill_leaving(256 << 10);
  const auto d = synthetic(40, 1);
  auto est = big_model(2, 1);
  est.set_checkpoint_dir(disk / "ckpt");
  std::string error;
  try {
    est.fit(d, all_rows(d.size()), {});
  } catch (const IoError& e) {
    error = e.what();
  }
  ASSERT_FALSE(error.empty()) << "the checkpoint fit on the disk (free " << disk.free_bytes() << " bytes)";
  EXPECT_NE(error.find("No space left on device"), std::string::npos) << error;
  EXPECT_NE(error.find((disk / "ckpt" / "member-0.e").string()), std::string::npos) << error;  // member-0.eE.pt
  // Nothing under a checkpoint's name, and no temporary left: a resume starts cleanly from scratch.
  for (const auto& name : names_in(disk / "ckpt")) ADD_FAILURE() << "left in the checkpoint folder: " << name;
  std::string why;
  EXPECT_TRUE(disk.unmount(&why)) << "the tmpfs is busy (a descriptor still open?): " << why;
}

TEST(CheckpointDiskFull, ANormalRunLeavesOnlyCompleteCheckpointsThatLoad) {
  TempDir tmp;
  const auto d = synthetic(40, 1);
  models::LocationModelOptions mo;
  mo.hidden_sizes = {8};
  TrainOptions to;
  to.epochs = 4;
  to.device = "cpu";
  to.checkpoint_every = 2;
  NeuralLocationEstimator est(mo, to);
  est.set_checkpoint_dir(tmp / "ckpt");
  est.fit(d, all_rows(d.size()), {});
  // The last checkpoint's files and the marker naming them; epoch 2's files were removed after epoch 4's marker.
  EXPECT_EQ(names_in(tmp / "ckpt"),
            (std::vector<std::string>{"member-0.e4.optim.pt", "member-0.e4.pt", "member-0.json"}));
  est.save(tmp / "final");
  EXPECT_EQ(names_in(tmp / "final"), (std::vector<std::string>{"member-0.pt", "model.json"}));
  const auto loaded = load_estimator(tmp / "final", "cpu");
  const auto a = est.predict(d, {0, 1, 2}), b = loaded->predict(d, {0, 1, 2});
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_DOUBLE_EQ(a.points[i].lat, b.points[i].lat);
    EXPECT_DOUBLE_EQ(a.points[i].lon, b.points[i].lon);
  }
  // Resuming reads the checkpoint written through the atomic path: it starts after epoch 4, i.e. does nothing.
  NeuralLocationEstimator again(mo, to);
  again.set_checkpoint_dir(tmp / "ckpt");
  int epochs_run = 0;
  again.fit(d, all_rows(d.size()), [&](int, double) { ++epochs_run; });
  EXPECT_EQ(epochs_run, 0);
}

}  // namespace
}  // namespace songlines::train
