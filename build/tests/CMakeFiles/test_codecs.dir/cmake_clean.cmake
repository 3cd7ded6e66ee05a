file(REMOVE_RECURSE
  "CMakeFiles/test_codecs.dir/hls/test_codecs.c.o"
  "CMakeFiles/test_codecs.dir/hls/test_codecs.c.o.d"
  "test_codecs"
  "test_codecs.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_codecs.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
