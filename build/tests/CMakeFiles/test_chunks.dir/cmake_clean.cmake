file(REMOVE_RECURSE
  "CMakeFiles/test_chunks.dir/plan/test_chunks.c.o"
  "CMakeFiles/test_chunks.dir/plan/test_chunks.c.o.d"
  "test_chunks"
  "test_chunks.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_chunks.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
