file(REMOVE_RECURSE
  "CMakeFiles/sn_engine.dir/src/media/audio_job.c.o"
  "CMakeFiles/sn_engine.dir/src/media/audio_job.c.o.d"
  "CMakeFiles/sn_engine.dir/src/media/filters.c.o"
  "CMakeFiles/sn_engine.dir/src/media/filters.c.o.d"
  "CMakeFiles/sn_engine.dir/src/media/fmp4.c.o"
  "CMakeFiles/sn_engine.dir/src/media/fmp4.c.o.d"
  "CMakeFiles/sn_engine.dir/src/media/input.c.o"
  "CMakeFiles/sn_engine.dir/src/media/input.c.o.d"
  "CMakeFiles/sn_engine.dir/src/media/poster.c.o"
  "CMakeFiles/sn_engine.dir/src/media/poster.c.o.d"
  "CMakeFiles/sn_engine.dir/src/media/probe.c.o"
  "CMakeFiles/sn_engine.dir/src/media/probe.c.o.d"
  "CMakeFiles/sn_engine.dir/src/media/video_job.c.o"
  "CMakeFiles/sn_engine.dir/src/media/video_job.c.o.d"
  "CMakeFiles/sn_engine.dir/src/pipeline/pool.c.o"
  "CMakeFiles/sn_engine.dir/src/pipeline/pool.c.o.d"
  "CMakeFiles/sn_engine.dir/src/pipeline/process.c.o"
  "CMakeFiles/sn_engine.dir/src/pipeline/process.c.o.d"
  "CMakeFiles/sn_engine.dir/src/pipeline/publish.c.o"
  "CMakeFiles/sn_engine.dir/src/pipeline/publish.c.o.d"
  "CMakeFiles/sn_engine.dir/src/util/fsutil.c.o"
  "CMakeFiles/sn_engine.dir/src/util/fsutil.c.o.d"
  "CMakeFiles/sn_engine.dir/src/util/log.c.o"
  "CMakeFiles/sn_engine.dir/src/util/log.c.o.d"
  "libsn_engine.a"
  "libsn_engine.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/sn_engine.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
