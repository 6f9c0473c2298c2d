// Command moviedb-client asks a fleet of moviedb servers at once: every
// request goes to every server in its list concurrently, each with a
// timeout, and it prints every server's answer, marks the servers that are
// down, and shows where their databases disagree. edit changes a movie on
// every server that has it; add adds a movie to every server that lacks it.
//
//	moviedb-client get "Alien"        one command, then exit (1 if a server failed)
//	moviedb-client                    interactive: prints the commands, reads them
//
// The server list lives in a JSON file (-servers, default servers.json),
// kept by the addserver and deleteserver commands; MOVIEDB_SERVERS
// (host:port,...) overrides it for requests. It reads MOVIEDB_SERVERS_FILE,
// MOVIEDB_SERVERS, MOVIEDB_TIMEOUT and MOVIEDB_PAGE_SIZE; flags win over
// them.
package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/socklab/socklab/services/kit/command"
	"github.com/socklab/socklab/services/kit/service"
	"github.com/socklab/socklab/services/moviedb/internal/fleet"
	"github.com/socklab/socklab/services/moviedb/internal/serverdb"
	"github.com/socklab/socklab/services/moviedb/proto"
)

const usage = `usage: moviedb-client [flags] [command [arguments]]

Sends each request to every moviedb server of the list at once and prints
every answer. Without a command it prints the commands and reads them from
standard input. With one, it runs it and exits: 0 when every server
answered, 1 when one failed (down, timed out, or an error), 2 for bad usage.

` + commandHelp

// Config holds the client's settings.
type Config struct {
	ServersFile string        `env:"SERVERS_FILE" envDefault:"servers.json" flag:"servers" help:"the server list file, kept by addserver and deleteserver"`
	Servers     string        `env:"SERVERS" flag:"addrs" help:"host:port,... to ask instead of the servers in the file"`
	Timeout     time.Duration `env:"TIMEOUT" envDefault:"2s" flag:"timeout" help:"time each server has to answer each request"`
	PageSize    int           `env:"PAGE_SIZE" envDefault:"500" flag:"page-size" help:"movies per page when 'all' reads a server"`
}

// Validate reports settings the client cannot run with.
func (c Config) Validate() error {
	if c.Timeout <= 0 {
		return fmt.Errorf("timeout must be positive")
	}
	if c.PageSize < 1 || c.PageSize > proto.MaxPageSize {
		return fmt.Errorf("page-size must be 1 to %d", proto.MaxPageSize)
	}
	return nil
}

func main() { command.MainIO(run) }

func run(ctx context.Context, args, environ []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var cfg Config
	var rest []string
	err := command.Command{
		Name: "moviedb-client", Usage: usage,
		Settings: []command.Settings{command.Env("MOVIEDB_", &cfg)},
		Args:     func(r []string) error { rest = r; return nil },
	}.Parse(args, environ, stderr)
	if err != nil {
		return err
	}
	var override []string
	if cfg.Servers != "" {
		if override, err = serverdb.ParseList(cfg.Servers); err != nil {
			return service.Usage(fmt.Errorf("MOVIEDB_SERVERS: %w", err))
		}
	}
	db, err := serverdb.Load(cfg.ServersFile)
	if err != nil {
		return service.Usage(err)
	}
	a := &app{
		cfg:      cfg,
		db:       db,
		override: override,
		fleet:    &fleet.Fleet{Timeout: cfg.Timeout},
		in:       newLineReader(stdin),
		out:      stdout,
		errOut:   stderr,
	}
	if len(rest) == 0 {
		return a.interactive(ctx)
	}
	return a.exec(ctx, rest)
}
