# Empty compiler generated dependencies file for test_codecs.
# This may be replaced when dependencies are built.
