// songlines features --input FILE --output OUT.h5 [--device cpu|host|cuda|auto] [--features LIST] [--batch-frames N]
#include <algorithm>
#include <iostream>
#include <filesystem>
#include <memory>
#include <optional>
#include <vector>

#include "audio/audio_file.h"
#include "cli/command.h"
#include "core/error.h"
#include "extract/extract_pipeline.h"
#include "features/device.h"
#include "features/device_engine.h"
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
      "device",
      "cpu (the FFTW reference engine), host (the device engine's source on the CPU, Thrust OpenMP: " +
          features::DeviceFeatureEngine::supported_feature_list() +
          "), cuda or auto (cuda when a GPU is usable, else cpu)",
      cxxopts::value<std::string>()->default_value("auto"))(
      "features", "comma-separated feature names (default: all)", cxxopts::value<std::string>())(
      "batch-frames", "STFT frames per device batch (host and cuda; default 8192 on the host, 131072 on CUDA); a "
      "longer track is computed in chunks of this many frames",
      cxxopts::value<int64_t>()->default_value("0"));
  o.custom_help("--input FILE --output OUT.h5 [--device cpu|host|cuda|auto] [--features LIST] [--batch-frames N]");
  return o;
}

int features_main(const cxxopts::ParseResult& args) {
  if (!args.count("input")) throw UsageError("features: missing --input FILE");
  if (!args.count("output")) throw UsageError("features: missing --output OUT.h5");
  const std::string input = args["input"].as<std::string>();
  const std::string output = args["output"].as<std::string>();
  features::Device device = features::resolve_device(
      features::parse_device(args["device"].as<std::string>(), features::HostDevice::kAccepted));

  features::FeatureOptions fo;
  fo.features = features::all_feature_names();
  if (args.count("features")) {
    fo.features.clear();
    std::string list = args["features"].as<std::string>();
    for (size_t start = 0; start <= list.size();) {
      const size_t comma = std::min(list.find(',', start), list.size());
      const std::string name = list.substr(start, comma - start);
      if (name.empty()) throw UsageError("--features: empty name in \"" + list + "\"");
      if (std::find(fo.features.begin(), fo.features.end(), name) != fo.features.end())
        throw UsageError("--features: \"" + name + "\" is listed twice");
      fo.features.push_back(name);
      start = comma + 1;
    }
  }
  fo.validate();
  // Every option is checked and the engine set up before any audio is read (exit status 2 for what it refuses).
  const features::FeatureEngineKind kind = features::feature_engine_for(device, fo);
  const int64_t batch_frames = args["batch-frames"].as<int64_t>();
  if (batch_frames < 0 || (batch_frames != 0 && kind != features::FeatureEngineKind::kDeviceEngine))
    throw UsageError("features --batch-frames: a frame count >= 0, for the device engine only (--device host or "
                     "cuda), got " + std::to_string(batch_frames));
  std::unique_ptr<features::DeviceFeatureEngine> engine;
  if (kind == features::FeatureEngineKind::kDeviceEngine) {
    features::DeviceEngineOptions eo;
    eo.backend = device == features::Device::kHost ? features::DeviceBackend::kHost : features::DeviceBackend::kCuda;
    eo.max_batch_frames = batch_frames;
    engine = features::open_device_engine(fo, eo);
  }
  // The file goes through extract's producers (extract/extract_pipeline.h): on the device engine, a decode thread
  // -> the batcher (a one-track ragged batch, in chunks of the frame budget when longer) -> the engine thread; on
  // the reference, the per-track producer. The record is made on the producer's side, as extract's.
  audio::LoadOptions lo;
  lo.sample_rate = fo.sample_rate;
  const std::vector<extract::ExtractTask> tasks = {{input, std::filesystem::path(input).stem().string(), std::nullopt}};
  extract::RecordMaker make_record = [&](size_t, features::TrackFeatures tf, double duration_s) {
    shards::TrackRecord rec;
    rec.id = tasks[0].id;
    rec.path = std::filesystem::weakly_canonical(std::filesystem::absolute(input)).string();
    rec.duration_s = static_cast<float>(duration_s);
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
    return rec;
  };
  extract::OutcomeQueue queue(tasks.size(), 1);
  std::unique_ptr<extract::TrackProducer> producer;
  std::unique_ptr<features::FeatureExtractor> extractor;
  if (engine) {
    producer = extract::start_device_producer(tasks, lo, 1, std::move(engine), make_record, queue);
  } else {
    extractor = std::make_unique<features::FeatureExtractor>(fo);
    extract::TrackCompute compute = [&extractor](const audio::MonoAudio& a) {
      return extractor->compute(a.samples.data(), static_cast<int64_t>(a.samples.size()));
    };
    producer = extract::start_per_track_producer(tasks, lo, 1, std::move(compute), make_record, queue);
  }
  extract::Outcome outcome = queue.take(0);  // rethrows a device failure
  producer.reset();
  if (!outcome.track) throw InputError(input, outcome.error);  // undecodable, or samples the engine refuses
  shards::TrackRecord& rec = *outcome.track;
  const int64_t common = rec.frames.empty() ? 0 : rec.frames.begin()->second.frames;

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
