// Package deploy holds no code that runs in production. Its tests check the
// deployment files of the repository against the services they deploy:
// docker-compose.dev.yaml, the Dockerfile, the K3S kustomization, the
// Prometheus, Grafana, Vector and Caddy configurations and the deploy
// workflow. Ports, environment variables, config keys and metric names are
// read from the services' own configs/config.yaml and Go sources, so a
// rename on either side fails a test instead of a deployment. The layer
// checks (layers_test.go) hold the code to its layout: no service's biz
// reaches a transport or driver package, and the lurus-common contracts
// import only the standard library.
//
// Run them with `go test ./...` in this directory (kubectl must be on PATH
// for the K3S checks, and PostgreSQL's server binaries installed for the
// checks that run the postgres init scripts against a throwaway server;
// LURUS_REQUIRE_INTEGRATION=1 turns their absence into a failure). `go test -run TestCopies -update` refreshes the copies that
// kustomize needs inside deploy/k3s from their sources.
package deploy
