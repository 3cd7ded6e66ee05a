# Empty compiler generated dependencies file for test_chunks.
# This may be replaced when dependencies are built.
