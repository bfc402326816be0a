// The device engine's result staging (features/device_engine/staging.h; docs/cuda.md "Stream pipeline"): the
// double-buffered pipeline logic runs here on the host, against a CopyQueue whose device-to-host copies happen only
// when waited for (DeferredCopyQueue, as an asynchronous copy engine may), so a delivery that does not wait for its
// copy, a buffer reused too early or a batch delivered out of order gives wrong rows. Then the whole engine with
// that queue against the engine with immediate copies: equal outputs, in order, and an error mid-run.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"
#include "features/device_engine.h"
#include "features/device_engine/staging.h"
#include "support/test_support.h"

namespace songlines::features {
namespace {

using device_engine::DeferredCopyQueue;
using device_engine::HostCopyQueue;
using device_engine::StagedDownloads;

/// Batch b's "device results": row r of batch b holds b * 1000 + r in each of its `dim` columns.
void compute(std::vector<float>& device, int batch, int rows, int dim) {
  device.assign(static_cast<size_t>(rows * dim), 0.0f);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < dim; ++c) device[static_cast<size_t>(r * dim + c)] = static_cast<float>(batch * 1000 + r);
}

TEST(DeviceStaging, BatchesAreDeliveredInOrderOnlyAfterTheirCopiesAndTheBuffersAreReusedSafely) {
  DeferredCopyQueue queue;
  StagedDownloads staging(queue);
  constexpr int kDim = 3;
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> rows_of(1, 40);
  std::vector<float> device;  // one working buffer, overwritten by every batch as the engine's are
  std::vector<std::vector<float>> host(9);
  std::vector<int> rows(9);
  for (int b = 0; b < 9; ++b) {
    rows[b] = rows_of(rng);
    host[b].assign(static_cast<size_t>(rows[b] * kDim), -1.0f);
    compute(device, b, rows[b], kDim);
    const int split = rows[b] / 2;  // two destinations per batch: pieces of two tracks
    const size_t bytes = static_cast<size_t>(rows[b] * kDim) * sizeof(float);
    staging.begin(bytes);
    staging.add(device.data(), host[b].data(), static_cast<size_t>(split * kDim) * sizeof(float));
    staging.add(device.data() + split * kDim, host[b].data() + split * kDim,
                static_cast<size_t>((rows[b] - split) * kDim) * sizeof(float));
    staging.end();
    // Two batches in flight at most: after begin() of batch b, every batch before b - 1 is delivered.
    EXPECT_EQ(staging.delivered(), std::max(0, b - 1)) << "batch " << b;
    for (int d = 0; d < b - 1; ++d)
      for (size_t k = 0; k < host[d].size(); ++k)
        ASSERT_EQ(host[d][k], static_cast<float>(d * 1000 + static_cast<int>(k) / kDim)) << "batch " << d << " after " << b;
    for (int d = std::max(0, b - 1); d <= b; ++d)  // not yet delivered: untouched
      ASSERT_EQ(host[d][0], -1.0f) << "batch " << d << " delivered early (after " << b << ")";
  }
  EXPECT_GE(queue.held(), 1u);  // the last copies are still "in flight"
  staging.drain();
  EXPECT_EQ(staging.delivered(), 9);
  EXPECT_EQ(queue.held(), 0u);
  for (int d = 0; d < 9; ++d)
    for (size_t k = 0; k < host[d].size(); ++k)
      ASSERT_EQ(host[d][k], static_cast<float>(d * 1000 + static_cast<int>(k) / kDim)) << "batch " << d;
  staging.drain();  // nothing left: a no-op
  EXPECT_EQ(staging.delivered(), 9);
}

TEST(DeviceStaging, ABatchThatThrewIsNeverDeliveredAndTheOthersKeepTheirOrder) {
  DeferredCopyQueue queue;
  StagedDownloads staging(queue);
  std::vector<float> device(4), a(4, -1.0f), b(4, -1.0f), c(4, -1.0f);
  compute(device, 1, 4, 1);
  staging.begin(16);
  staging.add(device.data(), a.data(), 16);
  staging.end();
  compute(device, 2, 4, 1);
  staging.begin(16);  // batch 2 fails between begin and end (its computation threw)
  staging.add(device.data(), b.data(), 8);
  compute(device, 3, 4, 1);
  staging.begin(16);  // drops batch 2
  staging.add(device.data(), c.data(), 16);
  staging.end();
  staging.drain();
  EXPECT_EQ(staging.delivered(), 2);
  EXPECT_EQ(a, (std::vector<float>{1000, 1001, 1002, 1003}));
  EXPECT_EQ(b, (std::vector<float>(4, -1.0f)));
  EXPECT_EQ(c, (std::vector<float>{3000, 3001, 3002, 3003}));
  // discard(): closed batches are forgotten (their destinations may be gone), their copies waited for.
  compute(device, 4, 4, 1);
  staging.begin(16);
  staging.add(device.data(), a.data(), 16);
  staging.end();
  staging.discard();
  EXPECT_EQ(queue.held(), 0u);
  staging.drain();
  EXPECT_EQ(a, (std::vector<float>{1000, 1001, 1002, 1003})) << "a discarded batch was delivered";
  // misuse is a logic error, not a silent write
  EXPECT_THROW(staging.add(device.data(), a.data(), 4), std::logic_error);
  staging.begin(8);
  EXPECT_THROW(staging.add(device.data(), a.data(), 12), std::logic_error);
}

TEST(DeviceStaging, UploadsArePackedInOrderAndASlotIsRewrittenOnlyAfterItsCopy) {
  // Batches of random sizes packed from several host pieces into one device buffer each; the queue checks that no
  // slot's bytes change before a wait covers the copy that reads them (an asynchronous copy could read them late).
  DeferredCopyQueue queue;
  device_engine::StagedUploads staging(queue);
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> pieces_of(1, 4), size_of(0, 300);
  std::vector<float> device;
  for (int b = 0; b < 12; ++b) {
    std::vector<std::vector<float>> pieces(static_cast<size_t>(pieces_of(rng)));
    std::vector<float> expected;
    for (size_t p = 0; p < pieces.size(); ++p) {
      pieces[p].resize(static_cast<size_t>(size_of(rng)));
      for (size_t k = 0; k < pieces[p].size(); ++k) pieces[p][k] = static_cast<float>(b * 100000 + p * 1000 + k);
      expected.insert(expected.end(), pieces[p].begin(), pieces[p].end());
    }
    device.assign(expected.size() + 1, -1.0f);
    staging.begin(expected.size() * sizeof(float));
    size_t at = 0;
    for (const auto& piece : pieces) {
      EXPECT_EQ(staging.add(piece.data(), piece.size() * sizeof(float)), at);
      at += piece.size() * sizeof(float);
    }
    staging.end(device.data());
    ASSERT_EQ(std::vector<float>(device.begin(), device.end() - 1), expected) << "batch " << b;
    EXPECT_EQ(device.back(), -1.0f) << "batch " << b << " wrote past its bytes";
  }
  queue.wait_all();
  EXPECT_EQ(queue.stale_uploads, 0);
  EXPECT_THROW(staging.add(device.data(), 4), std::logic_error);  // outside begin()/end()
  // The check itself: a source changed before the wait is caught.
  std::vector<float> src(8, 1.0f), dst(8, 0.0f);
  queue.host_to_device(dst.data(), src.data(), 8 * sizeof(float));
  const int64_t ticket = queue.record();
  src[3] = 2.0f;
  EXPECT_THROW(queue.wait(ticket), std::logic_error);
  EXPECT_EQ(queue.stale_uploads, 1);
}

/// Tracks of random lengths (some longer than the budget: chunks, finish_track after a drain).
std::vector<std::vector<float>> tracks_for_staging() {
  std::mt19937 rng(2024);
  std::uniform_int_distribution<int64_t> len(1, 40000);
  std::normal_distribution<double> noise(0.0, 0.1);
  std::vector<std::vector<float>> tracks;
  for (int i = 0; i < 9; ++i) {
    std::vector<float> y(static_cast<size_t>(i == 4 ? 120000 : len(rng)));
    const double f = 80.0 * (i + 1);
    for (size_t k = 0; k < y.size(); ++k)
      y[k] = static_cast<float>(0.4 * std::sin(2.0 * M_PI * f * static_cast<double>(k) / 22050.0) + noise(rng));
    tracks.push_back(std::move(y));
  }
  return tracks;
}

TEST(DeviceStaging, EngineWithAsynchronousCopiesEqualsTheEngineWithImmediateCopies) {
  // Every feature, ragged batches of 61 frames (many batches per pass, chunked tracks whose mel_db and contrast
  // rows are read back after a drain), outputs poisoned: held-back copies give exactly the same matrices, in the
  // same track order, as copies done at once.
  const std::vector<std::vector<float>> tracks = tracks_for_staging();
  const std::vector<std::span<const float>> spans(tracks.begin(), tracks.end());
  FeatureOptions o;
  DeviceEngineOptions immediate;
  immediate.max_batch_frames = 61;
  immediate.poison_outputs = true;
  DeviceEngineOptions deferred = immediate;
  deferred.deferred_host_copies = true;
  DeviceFeatureEngine a(o, immediate), b(o, deferred);
  const std::vector<TrackFeatures> x = a.compute_batch(spans), y = b.compute_batch(spans);
  EXPECT_GT(b.last_batch_count(), 20);
  ASSERT_EQ(x.size(), tracks.size());
  ASSERT_EQ(y.size(), tracks.size());
  for (size_t i = 0; i < tracks.size(); ++i) {
    EXPECT_EQ(x[i].n_frames, y[i].n_frames);
    EXPECT_EQ(x[i].tuning_cqt, y[i].tuning_cqt);
    EXPECT_EQ(x[i].tuning_chroma_stft, y[i].tuning_chroma_stft);
    for (const auto& [name, m] : x[i].frames) {
      const FeatureMatrix& n = y[i].frames.at(name);
      ASSERT_EQ(n.frames, m.frames) << name;
      for (size_t k = 0; k < m.data.size(); ++k) {
        ASSERT_FALSE(std::isnan(n.data[k])) << "track " << i << "/" << name << " element " << k << " never written";
        ASSERT_EQ(n.data[k], m.data[k]) << "track " << i << "/" << name << " element " << k;
      }
    }
  }
  // Again on the same engines (staging buffers reused), the tracks reversed: other batches, still equal exactly.
  // (Against the first run only within float32 rounding: the GEMMs' last bits depend on the batch's rows.)
  const std::vector<std::span<const float>> reversed(spans.rbegin(), spans.rend());
  const std::vector<TrackFeatures> xr = a.compute_batch(reversed), yr = b.compute_batch(reversed);
  for (size_t i = 0; i < tracks.size(); ++i)
    for (const auto& [name, m] : xr[i].frames) {
      ASSERT_EQ(yr[i].frames.at(name).data, m.data) << "reversed, track " << i << "/" << name;
      const std::vector<float>& first = x[tracks.size() - 1 - i].frames.at(name).data;
      ASSERT_EQ(first.size(), m.data.size()) << name;
      double num = 0.0, den = 0.0;
      for (size_t k = 0; k < first.size(); ++k) {
        num += (static_cast<double>(m.data[k]) - first[k]) * (static_cast<double>(m.data[k]) - first[k]);
        den += static_cast<double>(first[k]) * first[k];
      }
      EXPECT_LE(std::sqrt(num), 1e-4 * std::sqrt(den) + 1e-6) << "reversed vs first run, track " << i << "/" << name;
    }
}

TEST(DeviceStaging, AnErrorMidRunDropsTheStagedResultsAndLeavesTheEngineUsable) {
  // The 7th batch fails as a device would (fault injection), with earlier batches' results held back in the
  // staging: compute_batch throws the DeviceError, nothing is delivered into the dead outputs afterwards, and the
  // same engine then computes the same features as before. A refused track (NaN) likewise.
  std::vector<std::vector<float>> tracks = tracks_for_staging();
  const std::vector<std::span<const float>> good(tracks.begin(), tracks.end());
  FeatureOptions o;
  o.features = {"mfcc", "chroma_stft", "spectral_contrast", "cqt_mag"};
  DeviceEngineOptions eo;
  eo.max_batch_frames = 61;
  eo.deferred_host_copies = true;
  DeviceFeatureEngine engine(o, eo);
  const std::vector<TrackFeatures> before = engine.compute_batch(good);
  ASSERT_EQ(setenv("SONGLINES_TEST_KILL_AT", "device-engine-batch:7", 1), 0);
  try {
    engine.compute_batch(good);
    ADD_FAILURE() << "the injected failure did not reach the caller";
  } catch (const DeviceError& e) {
    EXPECT_NE(std::string(e.what()).find("injected failure of batch 7"), std::string::npos) << e.what();
  }
  unsetenv("SONGLINES_TEST_KILL_AT");
  tracks[5][17] = std::nanf("");
  const std::vector<std::span<const float>> bad(tracks.begin(), tracks.end());
  try {
    engine.compute_batch(bad);
    ADD_FAILURE() << "a NaN sample was accepted";
  } catch (const InputError& e) {
    EXPECT_EQ(e.path(), "track 5");
  }
  tracks[5][17] = 0.0f;
  const std::vector<TrackFeatures> after = engine.compute_batch(good);
  for (size_t i = 0; i < tracks.size(); ++i) {
    if (i == 5) continue;  // its sample 17 changed
    for (const auto& [name, m] : before[i].frames) ASSERT_EQ(after[i].frames.at(name).data, m.data) << i << "/" << name;
  }
}

}  // namespace
}  // namespace songlines::features
