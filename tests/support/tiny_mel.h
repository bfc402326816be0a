// The small mel analysis of the VAE and vocoder tests (8 kHz, 8 ms hops, 32 bands unless told), and the small VAE
// on its 32 bands, so that a model on it trains in seconds. Header only: the tests that use it link libtorch;
// test_support does not.
#pragma once

#include "generate/mel_spectrogram.h"
#include "models/vae.h"

namespace songlines::testing {

inline generate::MelAnalysisOptions tiny_mel_analysis(int n_mels = 32) {
  generate::MelAnalysisOptions a;
  a.sample_rate = 8000;
  a.n_fft = 256;
  a.hop_length = 64;
  a.n_mels = n_mels;
  return a;
}

/// A two-level VAE of 32 bands and 32-frame segments with a 4-channel latent.
inline models::VaeOptions tiny_vae_options() {
  models::VaeOptions m;
  m.n_mels = 32;
  m.segment_frames = 32;
  m.channels = {8, 16};
  m.latent_channels = 4;
  m.n_fourier = 4;
  m.cond_dim = 16;
  return m;
}

}  // namespace songlines::testing
