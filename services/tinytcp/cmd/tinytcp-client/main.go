// Command tinytcp-client talks to a TinyTCP server and prints the
// conversation in the seed's form ("CONNECT to ...", "-> " for what it
// sends, "<- " for what the server answers). With only HOST and PORT it
// runs the seed's demo; -c sends given commands, -i starts an interactive
// session, and commands piped on standard input are sent one per line.
//
// It reads TINYTCP_TIMEOUT (flag -timeout). It exits 0 when the session
// went as expected, 1 when the server was unreachable, closed early, broke
// the protocol or answered a command with ERROR, and 2 for a usage error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/socklab/socklab/services/kit/command"
	"github.com/socklab/socklab/services/tinytcp/internal/client"
)

const usage = `usage: tinytcp-client [flags] HOST PORT

Talks to a TinyTCP server and prints the conversation:
  CONNECT to HOST:PORT
  <- the server's line
  -> the client's command

What it sends:
  (nothing else given)   the demo: TIME and QUIT, then on a second
                         connection ECHO Hello from client and QUIT
  -c CMD (repeatable)    these commands, in order
  commands on stdin      one per line (blank lines skipped), when standard
                         input is a pipe or a file
  -i                     an interactive session: type commands after the
                         "-> " prompt; QUIT or end of input (Ctrl-D) ends it
QUIT ends a connection; a command after it opens a new one. At the end an
open connection is ended with QUIT.

Exit status: 0 when every command got its proper reply, 1 when the server
was unreachable, busy, closed early, sent a line that breaks the protocol,
or answered a command with ERROR, 2 for a usage error.`

// Config is the client's settings.
type Config struct {
	Timeout     time.Duration `env:"TIMEOUT" envDefault:"10s" flag:"timeout" help:"bound on connecting and on the wait for each reply"`
	Commands    []string      `flag:"c" arg:"command" help:"send this command"`
	Interactive bool          `flag:"i" help:"interactive session: type commands, see answers"`
}

// Validate reports settings the client cannot run with.
func (c Config) Validate() error {
	if c.Interactive && len(c.Commands) > 0 {
		return errors.New("-i and -c exclude each other")
	}
	if c.Timeout <= 0 {
		return errors.New("timeout must be positive")
	}
	for _, cmd := range c.Commands {
		if strings.ContainsAny(cmd, "\r\n") {
			return fmt.Errorf("-c %q: a command is one line, without CR or LF", cmd)
		}
	}
	return nil
}

func main() { command.MainIO(run) }

func run(ctx context.Context, args, environ []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var cfg Config
	var addr string
	err := command.Command{
		Name: "tinytcp-client", Usage: usage,
		Settings:    []command.Settings{command.Env("TINYTCP_", &cfg)},
		Interleaved: true, // flags may come before or after HOST PORT
		Args:        func(rest []string) (err error) { addr, err = client.HostPort(rest); return err },
	}.Parse(args, environ, stderr)
	if err != nil {
		return err
	}

	c := &client.Client{
		Addr:        addr,
		Timeout:     cfg.Timeout,
		Out:         stdout,
		Interactive: cfg.Interactive,
	}
	var src client.Source
	switch {
	case cfg.Interactive:
		lines := client.NewLines(stdin)
		defer lines.Close()
		src = lines
	case len(cfg.Commands) > 0:
		src = (*client.Commands)(&cfg.Commands)
	case hasScript(stdin):
		lines := client.NewLines(stdin)
		defer lines.Close()
		src = &orDemo{lines: lines}
	default:
		src = demo()
	}
	return c.Run(ctx, src)
}

func demo() *client.Commands {
	cmds := client.Commands(append([]string(nil), client.DemoCommands...))
	return &cmds
}

// hasScript reports whether commands may be waiting on stdin: a pipe, a
// file or a socket (not a terminal, nor /dev/null). Tests pass a plain
// reader for a script and nil for none.
func hasScript(stdin io.Reader) bool {
	f, ok := stdin.(*os.File)
	if !ok {
		return stdin != nil
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	m := fi.Mode()
	return m.IsRegular() || m&(os.ModeNamedPipe|os.ModeSocket) != 0
}

// orDemo sends the commands read from stdin, or the demo when stdin ends
// without any: an empty pipe, as a container started without a terminal
// may get, means nothing was asked but the default.
type orDemo struct {
	lines *client.Lines
	demo  *client.Commands
}

func (s *orDemo) Next(ctx context.Context) (string, error) {
	if s.demo != nil {
		return s.demo.Next(ctx)
	}
	cmd, err := s.lines.Next(ctx)
	if errors.Is(err, io.EOF) && s.lines.Count() == 0 {
		s.demo = demo()
		return s.demo.Next(ctx)
	}
	return cmd, err
}
