// Package labcheck holds the drift tests that keep the lab's files to the
// lab map (services/kit/lab): docker-compose.yml and the swarm stack (both
// parsed with compose-go, the library Compose itself uses), .env,
// deploy/Dockerfile and the READMEs' port tables. It has no code of its own.
package labcheck
