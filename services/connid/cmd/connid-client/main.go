// Command connid-client claims a connection ID from a connid server:
//
//	connid-client [flags] HELLO SERVER_IP SERVER_PORT CONNECTION_ID
//
// It prints "Connection established <ID> <Client_IP> <Client_Port> on
// <timestamp>" and exits 0 when the server answers OK. On RESET, or no reply
// within -timeout, it prints "Connection Error <ID> on <timestamp>", asks for
// a new ID and tries again with a new socket; after three tries it prints
// "Connection Failure on <timestamp>" and exits 1. -ids and -auto answer the
// prompts for scripts and containers.
//
// It reads CONNID_CLIENT_PROTOCOL, CONNID_CLIENT_TIMEOUT, CONNID_CLIENT_TRIES,
// CONNID_CLIENT_IDS and CONNID_CLIENT_AUTO; flags of the same names win over
// them.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/socklab/socklab/services/connid/internal/client"
	"github.com/socklab/socklab/services/kit/command"
)

const usage = `usage: connid-client [flags] HELLO SERVER_IP SERVER_PORT CONNECTION_ID

Claims CONNECTION_ID (1 to 64 printable ASCII characters without spaces) from
the connid server at SERVER_IP SERVER_PORT. Prints
  Connection established <ID> <Client_IP> <Client_Port> on <timestamp>
when the server grants it. When the ID is in use or no reply comes within
-timeout, prints "Connection Error <ID> on <timestamp>", asks for a new ID
and tries again on a new socket; after -tries tries prints
"Connection Failure on <timestamp>" and exits 1.`

// Config is the client's settings.
type Config struct {
	Protocol string        `env:"PROTOCOL" envDefault:"udp" flag:"protocol" help:"udp or tcp"`
	Timeout  time.Duration `env:"TIMEOUT" envDefault:"15s" flag:"timeout" help:"how long to wait for each reply"`
	Tries    int           `env:"TRIES" envDefault:"3" flag:"tries" help:"handshakes to try before giving up"`
	IDs      string        `env:"IDS" flag:"ids" help:"comma-separated IDs that answer the prompts for a new ID, in order"`
	Auto     bool          `env:"AUTO" flag:"auto" help:"answer the prompts with random IDs (once -ids are used up)"`
}

func main() { command.MainIO(run) }

// deps are what tests replace: the socket dialer and the clock.
type deps struct {
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	now  func() time.Time
}

func run(ctx context.Context, args, environ []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return runWith(ctx, deps{}, args, environ, stdin, stdout, stderr)
}

func runWith(ctx context.Context, d deps, args, environ []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var cfg Config
	var pos []string
	var ids []string
	err := command.Command{
		Name: "connid-client", Usage: usage,
		Settings:    []command.Settings{command.Env("CONNID_CLIENT_", &cfg)},
		Interleaved: true,
		FullUsage:   true,
		Args:        func(rest []string) error { pos = rest; return checkArgs(rest) },
		Validate:    func() (err error) { ids, err = cfg.check(); return err },
	}.Parse(args, environ, stderr)
	if err != nil {
		return err
	}

	p := &client.Prompter{
		IDs: ids, Auto: cfg.Auto, In: bufio.NewReader(stdin),
		Out: stdout, Diag: stderr, Echo: !command.IsTerminal(stdin),
	}
	c := &client.Client{
		Network: cfg.Protocol,
		Server:  net.JoinHostPort(pos[1], pos[2]),
		Timeout: cfg.Timeout,
		Tries:   cfg.Tries,
		Dial:    d.dial,
		Now:     d.now,
		Out:     stdout,
		Diag:    stderr,
		NextID:  p.Next,
	}
	if _, err := c.Run(ctx, pos[3]); err != nil {
		if errors.Is(err, client.ErrFailure) {
			return fmt.Errorf("no connection to %s after %d tries", c.Server, cfg.Tries)
		}
		return err
	}
	return nil
}

// checkArgs checks HELLO SERVER_IP SERVER_PORT CONNECTION_ID.
func checkArgs(pos []string) error {
	if len(pos) != 4 {
		return fmt.Errorf("want 4 arguments, HELLO SERVER_IP SERVER_PORT CONNECTION_ID, got %d", len(pos))
	}
	if pos[0] != "HELLO" {
		return fmt.Errorf("the first argument must be HELLO, not %q", pos[0])
	}
	if port, err := strconv.ParseUint(pos[2], 10, 16); err != nil || port == 0 {
		return fmt.Errorf("SERVER_PORT %q is not a port number (1 to 65535)", pos[2])
	}
	return client.CheckID(pos[3])
}

// check checks the settings and returns the IDs of -ids.
func (cfg Config) check() ([]string, error) {
	if cfg.Protocol != "udp" && cfg.Protocol != "tcp" {
		return nil, fmt.Errorf("-protocol must be udp or tcp, not %q", cfg.Protocol)
	}
	if cfg.Timeout <= 0 {
		return nil, errors.New("-timeout must be positive")
	}
	if cfg.Tries < 1 || cfg.Tries > 100 {
		return nil, errors.New("-tries must be from 1 to 100")
	}
	if cfg.IDs == "" {
		return nil, nil
	}
	ids := strings.Split(cfg.IDs, ",")
	for _, id := range ids {
		if err := client.CheckID(id); err != nil {
			return nil, fmt.Errorf("-ids: %w", err)
		}
	}
	return ids, nil
}
