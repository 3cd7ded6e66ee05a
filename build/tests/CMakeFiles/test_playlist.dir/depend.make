# Empty dependencies file for test_playlist.
# This may be replaced when dependencies are built.
