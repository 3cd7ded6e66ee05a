file(REMOVE_RECURSE
  "CMakeFiles/sinatra.dir/src/cli/main.c.o"
  "CMakeFiles/sinatra.dir/src/cli/main.c.o.d"
  "CMakeFiles/sinatra.dir/src/cli/progress.c.o"
  "CMakeFiles/sinatra.dir/src/cli/progress.c.o.d"
  "CMakeFiles/sinatra.dir/src/cli/settings.c.o"
  "CMakeFiles/sinatra.dir/src/cli/settings.c.o.d"
  "sinatra"
  "sinatra.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/sinatra.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
