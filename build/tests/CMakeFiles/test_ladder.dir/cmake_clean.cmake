file(REMOVE_RECURSE
  "CMakeFiles/test_ladder.dir/plan/test_ladder.c.o"
  "CMakeFiles/test_ladder.dir/plan/test_ladder.c.o.d"
  "test_ladder"
  "test_ladder.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_ladder.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
