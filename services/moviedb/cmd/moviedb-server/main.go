// Command moviedb-server is one server of the moviedb fleet: it keeps its
// own movie database (go-memdb, made durable by a write-ahead log) and
// answers one JSON request line per TCP connection with one JSON response
// line: get, all (paged), add, edit. It listens on the first free port of a
// list, so that several servers can share a host. The protocol is in
// services/moviedb/README.md.
//
// It reads MOVIEDB_HOST, MOVIEDB_PORTS, MOVIEDB_DATA_DIR, MOVIEDB_SEED,
// MOVIEDB_REPAIR, MOVIEDB_IDLE_TIMEOUT, MOVIEDB_MAX_CONNS,
// MOVIEDB_MAX_CONNS_PER_SOURCE, MOVIEDB_MAX_PENDING_MIB, LOG_LEVEL,
// LOG_FORMAT, METRICS_ADDR and SHUTDOWN_TIMEOUT; flags of the same names win
// over them. `moviedb-server healthcheck` asks a running server on the port
// list for one movie and exits 0 when it answers.
package main

import (
	"context"
	"io"

	"github.com/socklab/socklab/services/kit/command"
	"github.com/socklab/socklab/services/kit/health"
	"github.com/socklab/socklab/services/moviedb/internal/server"
)

const usage = `usage: moviedb-server [flags]
       moviedb-server healthcheck [flags]

Serves a movie database over TCP on the first free port of a list: one JSON
request line per connection, one JSON response line, then close.
  {"op":"get","title":"Alien"}                      one movie, case-insensitively
  {"op":"all","cursor":"...","limit":100}           a page of all movies
  {"op":"add","movie":{"title":...,"year":...}}     a new movie
  {"op":"edit","title":"Alien","set":{"year":1979}} change some fields
Changes are in the write-ahead log in -data-dir, fsynced, before the reply.`

func main() { command.Main(run) }

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	var cfg server.Config
	return command.Server{
		Command:     command.Command{Name: "moviedb-server", Usage: usage, Settings: []command.Settings{command.Env("MOVIEDB_", &cfg)}},
		Healthcheck: func() []health.Probe { return []health.Probe{server.Probe(cfg)} },
		Start:       func(_ context.Context, s *command.Setup) error { return server.Start(s, cfg) },
	}.Run(ctx, args, environ, stderr)
}
