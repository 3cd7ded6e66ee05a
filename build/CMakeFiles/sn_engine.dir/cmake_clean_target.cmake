file(REMOVE_RECURSE
  "libsn_engine.a"
)
