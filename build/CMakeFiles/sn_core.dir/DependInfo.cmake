
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/src/hls/codecs.c" "CMakeFiles/sn_core.dir/src/hls/codecs.c.o" "gcc" "CMakeFiles/sn_core.dir/src/hls/codecs.c.o.d"
  "/work/main/src/hls/playlist.c" "CMakeFiles/sn_core.dir/src/hls/playlist.c.o" "gcc" "CMakeFiles/sn_core.dir/src/hls/playlist.c.o.d"
  "/work/main/src/plan/chunks.c" "CMakeFiles/sn_core.dir/src/plan/chunks.c.o" "gcc" "CMakeFiles/sn_core.dir/src/plan/chunks.c.o.d"
  "/work/main/src/plan/ladder.c" "CMakeFiles/sn_core.dir/src/plan/ladder.c.o" "gcc" "CMakeFiles/sn_core.dir/src/plan/ladder.c.o.d"
  "/work/main/src/util/buf.c" "CMakeFiles/sn_core.dir/src/util/buf.c.o" "gcc" "CMakeFiles/sn_core.dir/src/util/buf.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
