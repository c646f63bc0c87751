// Package chaos is the fault suite (issue 13): it starts a private stack
// (its own PostgreSQL cluster, nats-server and redis-server, where asked a
// clickhouse-server with log-service, and the services as real processes),
// injures it (SIGKILL, restarts, cut and slowed connections, misbehaving
// upstreams) under load, and after every scenario checks the money
// invariants: one usage row and one debit per accepted request, ledger sum
// equal to balance, no balance past the credit bound, the Redis mirror
// equal to PostgreSQL, nothing left unsettled; with the request log, that
// ClickHouse counts each request once. It never
// touches the machine's shared servers. Run it with `make chaos`;
// RELIABILITY.md records a run.
package chaos
