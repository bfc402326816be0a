# cmake -DSOURCE_DIR=... -DOUT=... -P cmake/GitRevision.cmake
# Run at every build (the songlines_git_revision target, src/CMakeLists.txt): writes OUT, the definition of
# songlines::git_revision(), from the checkout's HEAD, with "-dirty" when tracked files differ from it, and
# "unknown" outside a git checkout. OUT is rewritten only when the revision changed, so an unchanged tree
# rebuilds nothing and a new commit recompiles one small file and relinks.
execute_process(COMMAND git rev-parse --short HEAD WORKING_DIRECTORY "${SOURCE_DIR}"
                OUTPUT_VARIABLE SONGLINES_GIT_REVISION OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET
                RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0 OR NOT SONGLINES_GIT_REVISION)
  set(SONGLINES_GIT_REVISION unknown)
else()
  execute_process(COMMAND git diff --quiet HEAD -- WORKING_DIRECTORY "${SOURCE_DIR}" RESULT_VARIABLE _dirty
                  OUTPUT_QUIET ERROR_QUIET)
  if(NOT _dirty EQUAL 0)
    string(APPEND SONGLINES_GIT_REVISION "-dirty")
  endif()
endif()
configure_file("${SOURCE_DIR}/src/core/git_revision.cpp.in" "${OUT}" @ONLY)
