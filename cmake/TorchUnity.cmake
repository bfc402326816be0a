# SONGLINES_TORCH_UNITY=ON (scripts/build-torch2.sh): the files that include <torch/torch.h> are compiled a few to a
# translation unit (CMake's unity build, GROUP mode), so the libtorch headers are parsed ~10 times instead of ~35.
# With libtorch 2.x that parse is most of a file's 85-315 s on 2 cores (docs/benchmarks.md). Every other file, and
# a torch file not listed here (a new one), is compiled on its own as in the default build; so a file the light
# binary takes from the runs or train archive stays a member of its own, free of libtorch (src/cli/CMakeLists.txt).
# Groups are per target and sized for 2 cores. Files in one group share one translation unit, so their internal
# names (anonymous namespaces, statics) must not clash; the 2.x build in CI (.ci/run) is what catches a clash.
option(SONGLINES_TORCH_UNITY "Compile the libtorch-including files a few to a translation unit (unity build)" OFF)

# songlines_torch_unity(TARGET group file... [GROUP group file...]...): files are relative to the project root.
function(songlines_torch_unity target)
  set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_MODE GROUP)
  set(_group "")
  foreach(_arg IN LISTS ARGN)
    if(_arg STREQUAL "GROUP")
      set(_group "")
    elseif(_group STREQUAL "")
      set(_group ${target}_${_arg})
    elseif(EXISTS ${PROJECT_SOURCE_DIR}/${_arg})
      set_source_files_properties(${PROJECT_SOURCE_DIR}/${_arg} TARGET_DIRECTORY ${target}
                                  PROPERTIES UNITY_GROUP ${_group})
    endif()
  endforeach()
endfunction()

if(SONGLINES_TORCH_UNITY)
  songlines_torch_unity(songlines_models torch
    models/location_heads.cpp models/location_model.cpp models/torch_compat.cpp models/vae.cpp)
  songlines_torch_unity(songlines_generate a
    src/generate/griffin_lim.cpp src/generate/mel_crop_source.cpp src/generate/mel_spectrogram.cpp
    src/generate/spectrogram_image.cpp
    GROUP b
    src/generate/stft_distance.cpp src/generate/vae_bundle.cpp src/generate/vae_generator.cpp
    src/generate/vae_training.cpp)
  songlines_torch_unity(songlines_runs torch
    src/runs/location_run.cpp src/runs/run_config.cpp src/runs/task.cpp src/runs/vae_run.cpp)
  songlines_torch_unity(songlines_full a
    src/bench/bench_crops.cpp src/bench/bench_train.cpp src/cli/cmd_generate.cpp src/cli/cmd_predict.cpp
    GROUP b
    src/bench/bench_generate.cpp src/cli/cmd_reconstruct.cpp src/cli/cmd_transfer.cpp)
  if(SONGLINES_BUILD_TESTS)
    songlines_torch_unity(test_train torch
      tests/train/frame_store_test.cpp tests/train/heads_test.cpp tests/train/train_reliability_test.cpp
      tests/train/trainer_test.cpp)
    songlines_torch_unity(test_generate torch
      tests/generate/audio_path_test.cpp tests/generate/vae_stream_test.cpp tests/generate/vae_test.cpp)
    songlines_torch_unity(test_runs torch
      tests/runs/data_globs_test.cpp tests/runs/runs_test.cpp tests/runs/temporal_test.cpp)
  endif()
endif()
