// Command filestream-client talks to a filestream server at a prompt, as
// the seed's client did: text is echoed, an integer N fetches a file of N
// characters (reported by size, CRC-32C, time and throughput, or printed
// with -print-file), "stream" asks for a paced packet stream (reported by
// loss, duplicates, reordering and jitter), "quit" ends. Commands come from
// -c flags, else from standard input (prompted when it is a terminal).
//
// It reads FILESTREAM_PROTOCOL, FILESTREAM_SERVER, FILESTREAM_HOSTS,
// FILESTREAM_PRINT_FILE and FILESTREAM_TIMEOUT; flags of the same names win.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/socklab/socklab/services/filestream/internal/client"
	"github.com/socklab/socklab/services/kit/command"
	"github.com/socklab/socklab/services/kit/service"
)

const usage = `usage: filestream-client [flags]

Commands (one per line, or one per -c flag):
  any text                      echo it
  N                             fetch a file of N characters
  stream [ms [count [size]]]    a stream of count packets (default 100),
                                one every ms milliseconds (asked if missing)
  quit                          end`

func main() { command.MainIO(run) }

func run(ctx context.Context, args, environ []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var cfg client.Config
	err := command.Command{
		Name: "filestream-client", Usage: usage,
		Settings: []command.Settings{command.Env("FILESTREAM_", &cfg)},
		Args: func(rest []string) error {
			if len(rest) > 0 {
				return fmt.Errorf("unexpected arguments %q (commands go in -c)", rest)
			}
			return nil
		},
	}.Parse(args, environ, stderr)
	if err != nil {
		return err
	}
	hosts := []string{client.DefaultServer}
	if cfg.Hosts != "" {
		f, err := os.Open(cfg.Hosts)
		if err != nil {
			return service.Usage(err)
		}
		hosts, err = client.ReadHosts(f)
		f.Close()
		if err != nil {
			return service.Usage(fmt.Errorf("hosts file %s: %w", cfg.Hosts, err))
		}
	}

	sh := client.NewShell(stdin, cfg.Commands, stdout)
	sh.Prompt = len(cfg.Commands) == 0 && command.IsTerminal(stdin)
	sh.PrintFile = cfg.PrintFile
	addr := cfg.Server
	if addr == "" {
		if addr, err = sh.ChooseServer(hosts); err != nil {
			return err
		}
	}
	sess, err := client.Dial(ctx, cfg.Protocol, addr, client.Options{Timeout: cfg.Timeout})
	if err != nil {
		return err
	}
	defer sess.Close()
	if sh.Prompt {
		fmt.Fprintf(stdout, "connected to %s over %s\n", addr, cfg.Protocol)
	}
	return sh.Run(ctx, sess)
}
