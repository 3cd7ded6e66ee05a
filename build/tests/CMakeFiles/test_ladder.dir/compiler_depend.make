# Empty compiler generated dependencies file for test_ladder.
# This may be replaced when dependencies are built.
