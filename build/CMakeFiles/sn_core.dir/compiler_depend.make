# Empty compiler generated dependencies file for sn_core.
# This may be replaced when dependencies are built.
