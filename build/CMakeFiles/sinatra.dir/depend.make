# Empty dependencies file for sinatra.
# This may be replaced when dependencies are built.
