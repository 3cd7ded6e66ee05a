
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/src/media/audio_job.c" "CMakeFiles/sn_engine.dir/src/media/audio_job.c.o" "gcc" "CMakeFiles/sn_engine.dir/src/media/audio_job.c.o.d"
  "/work/main/src/media/filters.c" "CMakeFiles/sn_engine.dir/src/media/filters.c.o" "gcc" "CMakeFiles/sn_engine.dir/src/media/filters.c.o.d"
  "/work/main/src/media/fmp4.c" "CMakeFiles/sn_engine.dir/src/media/fmp4.c.o" "gcc" "CMakeFiles/sn_engine.dir/src/media/fmp4.c.o.d"
  "/work/main/src/media/input.c" "CMakeFiles/sn_engine.dir/src/media/input.c.o" "gcc" "CMakeFiles/sn_engine.dir/src/media/input.c.o.d"
  "/work/main/src/media/poster.c" "CMakeFiles/sn_engine.dir/src/media/poster.c.o" "gcc" "CMakeFiles/sn_engine.dir/src/media/poster.c.o.d"
  "/work/main/src/media/probe.c" "CMakeFiles/sn_engine.dir/src/media/probe.c.o" "gcc" "CMakeFiles/sn_engine.dir/src/media/probe.c.o.d"
  "/work/main/src/media/video_job.c" "CMakeFiles/sn_engine.dir/src/media/video_job.c.o" "gcc" "CMakeFiles/sn_engine.dir/src/media/video_job.c.o.d"
  "/work/main/src/pipeline/pool.c" "CMakeFiles/sn_engine.dir/src/pipeline/pool.c.o" "gcc" "CMakeFiles/sn_engine.dir/src/pipeline/pool.c.o.d"
  "/work/main/src/pipeline/process.c" "CMakeFiles/sn_engine.dir/src/pipeline/process.c.o" "gcc" "CMakeFiles/sn_engine.dir/src/pipeline/process.c.o.d"
  "/work/main/src/pipeline/publish.c" "CMakeFiles/sn_engine.dir/src/pipeline/publish.c.o" "gcc" "CMakeFiles/sn_engine.dir/src/pipeline/publish.c.o.d"
  "/work/main/src/util/fsutil.c" "CMakeFiles/sn_engine.dir/src/util/fsutil.c.o" "gcc" "CMakeFiles/sn_engine.dir/src/util/fsutil.c.o.d"
  "/work/main/src/util/log.c" "CMakeFiles/sn_engine.dir/src/util/log.c.o" "gcc" "CMakeFiles/sn_engine.dir/src/util/log.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  "/work/main/build/CMakeFiles/sn_core.dir/DependInfo.cmake"
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
