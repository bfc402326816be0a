// songlines features --input FILE --output OUT.h5 [--device cpu|cuda|auto]
#include <iostream>
#include <span>

#include "audio/audio_file.h"
#include "cli/command.h"
#include "core/error.h"
#include "features/cuda_feature_engine.h"
#include "features/device.h"
#include "features/feature_extractor.h"
#include "shards/shard.h"

namespace songlines::cli {
namespace {

cxxopts::Options features_options() {
  cxxopts::Options o("songlines features",
                     "Every frame-level feature of one audio file (stft_mag, melspectrogram, mel_db, mfcc, "
                     "chroma_stft, spectral_contrast, cqt_mag, chroma_cqt, tonnetz; librosa 0.11 defaults) as a "
                     "one-track shard (docs/shard-format.md). Features whose frame count differs (CQT-based ones "
                     "may have one frame fewer) are stored trimmed to the shortest; summaries use all frames.");
  o.add_options()("i,input", "audio file", cxxopts::value<std::string>())(
      "o,output", "output shard (.h5)", cxxopts::value<std::string>())(
      "device", "cpu, cuda or auto", cxxopts::value<std::string>()->default_value("auto"));
  o.custom_help("--input FILE --output OUT.h5 [--device cpu|cuda|auto]");
  return o;
}

int features_main(const cxxopts::ParseResult& args) {
  if (!args.count("input")) throw UsageError("features: missing --input FILE");
  if (!args.count("output")) throw UsageError("features: missing --output OUT.h5");
  const std::string input = args["input"].as<std::string>();
  const std::string output = args["output"].as<std::string>();
  features::Device device = features::resolve_device(features::parse_device(args["device"].as<std::string>()));

  features::FeatureOptions fo;
  fo.features = features::all_feature_names();
  fo.validate();
  audio::LoadOptions lo;
  lo.sample_rate = fo.sample_rate;
  audio::MonoAudio audio = audio::load_audio(input, lo);
  features::TrackFeatures tf;
  if (device == features::Device::kCuda) {
    std::vector<std::span<const float>> batch = {std::span<const float>(audio.samples)};
    tf = std::move(features::compute_features_cuda(fo, batch).at(0));
  } else {
    features::FeatureExtractor extractor(fo);
    tf = extractor.compute(audio.samples.data(), static_cast<int64_t>(audio.samples.size()));
  }

  shards::TrackRecord rec;
  rec.id = std::filesystem::path(input).stem().string();
  rec.path = std::filesystem::weakly_canonical(std::filesystem::absolute(input)).string();
  rec.duration_s = static_cast<float>(audio.duration_s());
  int64_t common = -1;
  for (auto& [name, m] : tf.frames) {
    rec.summary[name] = shards::summarize(m);
    common = common < 0 ? m.frames : std::min(common, m.frames);
  }
  for (auto& [name, m] : tf.frames) {
    m.frames = common;
    m.data.resize(static_cast<size_t>(common * m.dim));
    rec.frames[name] = std::move(m);
  }
  shards::ShardAttributes attributes;
  attributes.sample_rate = fo.sample_rate;
  attributes.n_fft = fo.stft.n_fft;
  attributes.hop_length = fo.stft.hop_length;
  attributes.feature_options = fo.to_json();
  shards::ShardWriter writer(output, attributes);
  writer.add(rec);
  writer.close();
  std::cout << output << ": " << rec.frames.size() << " features, " << common << " frames, " << rec.duration_s
            << " s of audio (" << features::device_name(device) << ")\n";
  for (const auto& [name, m] : rec.frames) std::cout << "  /frames/" << name << " [" << m.frames << ", " << m.dim << "]\n";
  return 0;
}

SONGLINES_REGISTER_COMMAND(Command{"features", "every frame-level feature of one audio file, as a one-track shard",
                                   features_options, features_main, {},
                                   {"songlines features --input song.flac --output song.h5 --device cpu"}});

}  // namespace
}  // namespace songlines::cli
