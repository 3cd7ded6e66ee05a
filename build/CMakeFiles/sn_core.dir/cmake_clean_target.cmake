file(REMOVE_RECURSE
  "libsn_core.a"
)
