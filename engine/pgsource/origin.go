package pgsource

// BackfillOrigin is the replication origin of the engine's own writes into a
// connector's Postgres: the rows it copies from the merged state when that
// Postgres gains a table or a column. Ingest drops transactions carrying it
// like an ignored transaction (the slot moves past them, nothing is merged
// and the causal context does not change): merging them again would turn
// already-merged values into new writes of this connector, which would win
// over later writes of the others.
const BackfillOrigin = "electric_backfill"

// ignoredOrigin reports whether a transaction's replication origin marks it
// as the engine's own write.
func ignoredOrigin(name string) bool { return name == BackfillOrigin }
