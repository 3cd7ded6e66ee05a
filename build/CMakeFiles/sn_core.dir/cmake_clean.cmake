file(REMOVE_RECURSE
  "CMakeFiles/sn_core.dir/src/hls/codecs.c.o"
  "CMakeFiles/sn_core.dir/src/hls/codecs.c.o.d"
  "CMakeFiles/sn_core.dir/src/hls/playlist.c.o"
  "CMakeFiles/sn_core.dir/src/hls/playlist.c.o.d"
  "CMakeFiles/sn_core.dir/src/plan/chunks.c.o"
  "CMakeFiles/sn_core.dir/src/plan/chunks.c.o.d"
  "CMakeFiles/sn_core.dir/src/plan/ladder.c.o"
  "CMakeFiles/sn_core.dir/src/plan/ladder.c.o.d"
  "CMakeFiles/sn_core.dir/src/util/buf.c.o"
  "CMakeFiles/sn_core.dir/src/util/buf.c.o.d"
  "libsn_core.a"
  "libsn_core.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/sn_core.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
