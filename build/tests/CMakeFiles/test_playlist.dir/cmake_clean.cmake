file(REMOVE_RECURSE
  "CMakeFiles/test_playlist.dir/hls/test_playlist.c.o"
  "CMakeFiles/test_playlist.dir/hls/test_playlist.c.o.d"
  "test_playlist"
  "test_playlist.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_playlist.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
