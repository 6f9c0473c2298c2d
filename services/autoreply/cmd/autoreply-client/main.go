// Command autoreply-client sends random printable messages of varying
// length to an autoreply server over TCP or UDP, checks that each reply
// quotes the message's length and snippet, and prints a summary with
// round-trip percentiles. It exits 0 only if every message got its reply.
//
// It reads AUTOREPLY_PROTOCOL, AUTOREPLY_SERVER, AUTOREPLY_COUNT,
// AUTOREPLY_INTERVAL, AUTOREPLY_MIN_LEN, AUTOREPLY_MAX_LEN,
// AUTOREPLY_TIMEOUT, AUTOREPLY_SEED and AUTOREPLY_QUIET; flags win.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/socklab/socklab/services/autoreply/internal/client"
	"github.com/socklab/socklab/services/kit/command"
)

const usage = `usage: autoreply-client [flags]

Sends random printable strings to an AutoReplyNet server, one line each over
TCP or one datagram each over UDP, and checks every reply. Prints each
exchange (-q: only the summary), then sent, replied, lost, errors and
round-trip min/p50/p90/p99/max. Exit status 0 only if every message got its
reply; 1 otherwise; 2 for bad arguments.`

func main() { command.Main(run) }

// errIncomplete reports a run in which some message got no good reply; the
// summary already says which counts.
var errIncomplete = errors.New("not every message got its reply")

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	var cfg client.Config
	err := command.Command{
		Name: "autoreply-client", Usage: usage,
		Settings: []command.Settings{command.Env("AUTOREPLY_", &cfg)},
	}.Parse(args, environ, stderr)
	if err != nil {
		return err
	}
	sum, err := client.Run(ctx, cfg, stdout)
	fmt.Fprintln(stdout, sum)
	if err != nil {
		return err
	}
	if !sum.OK() {
		return errIncomplete
	}
	return nil
}
