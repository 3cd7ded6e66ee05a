# Empty dependencies file for sn_engine.
# This may be replaced when dependencies are built.
