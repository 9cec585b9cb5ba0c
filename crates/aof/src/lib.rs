//! forkless-aof (being written)
