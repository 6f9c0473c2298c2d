package command_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/socklab/socklab/services/kit/command"
	"github.com/socklab/socklab/services/kit/health"
	"github.com/socklab/socklab/services/kit/netserve"
	"github.com/socklab/socklab/services/kit/nettest"
	"github.com/socklab/socklab/services/kit/service"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type settings struct {
	Addr  string        `env:"ADDR" envDefault:"127.0.0.1:0" flag:"addr" help:"listen address"`
	Delay time.Duration `env:"DELAY" envDefault:"1s" flag:"delay" help:"a duration"`
}

type zone struct {
	TZ string `env:"TZ" flag:"tz" help:"time zone"`
}

// echo is a server command serving an echo handler over both protocols.
func echo(cfg *settings, tz *zone) command.Server {
	return command.Server{
		Command: command.Command{
			Name: "echo-server", Usage: "usage: echo-server",
			Settings: []command.Settings{command.Env("ECHO_", cfg), command.Env("", tz)},
			Validate: func() error {
				if cfg.Delay < 0 {
					return errors.New("delay must not be negative")
				}
				return nil
			},
		},
		Healthcheck: func() []health.Probe {
			return health.Listeners("both", cfg.Addr, []byte("ping"))
		},
		Start: func(ctx context.Context, s *command.Setup) error {
			tcp := &netserve.Server{Handler: netserve.HandlerFunc(func(_ context.Context, c *netserve.Conn) {
				for {
					line, err := c.ReadLine()
					if err != nil {
						return
					}
					c.Write(append(line, '\n'))
					c.Flush()
				}
			})}
			udp := &netserve.PacketServer{Handler: netserve.PacketHandlerFunc(func(p *netserve.Packet) { p.Reply(p.Data) })}
			return s.Listen("both", cfg.Addr, tcp, udp)
		},
	}
}

func TestServerRuns(t *testing.T) {
	var cfg settings
	var tz zone
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- echo(&cfg, &tz).Run(ctx, []string{"-tz", "UTC", "-metrics-addr", "127.0.0.1:0"}, []string{"LOG_FORMAT=json", "ECHO_DELAY=2s"}, pw)
		pw.Close()
	}()
	w := nettest.WatchLog(pr)
	addr := w.Wait(t, "listening")["addr"].(string)
	w.Wait(t, "listening") // udp
	w.Wait(t, "metrics")
	if cfg.Delay != 2*time.Second || tz.TZ != "UTC" {
		t.Errorf("settings = %+v %+v, want the env's delay and the flag's TZ", cfg, tz)
	}
	c := nettest.DialLines(t, addr)
	c.Send("hi")
	c.Expect("hi")
	var probe settings
	if err := echo(&probe, &zone{}).Run(ctx, []string{"healthcheck", "-addr", addr}, nil, io.Discard); err != nil {
		t.Errorf("healthcheck of a running server = %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel = %v", err)
	}
	go io.Copy(io.Discard, pr)
}

func TestServerUsageErrors(t *testing.T) {
	tests := []struct {
		args    []string
		environ []string
		want    string
	}{
		{nil, []string{"ECHO_DELAY=soon"}, "ECHO_DELAY"},
		{[]string{"-delay", "-1s"}, nil, "delay must not be negative"},
		{[]string{"extra"}, nil, "unexpected arguments"},
		{nil, []string{"SHUTDOWN_TIMEOUT=x"}, "SHUTDOWN_TIMEOUT"},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		err := echo(&settings{}, &zone{}).Run(t.Context(), tt.args, tt.environ, &stderr)
		var uerr *service.UsageError
		if !errors.As(err, &uerr) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Run(%q, %q) = %v, want a usage error naming %q", tt.args, tt.environ, err, tt.want)
		}
	}
}

func TestServerMain(t *testing.T) {
	ran := false
	err := command.Server{
		Command: command.Command{Name: "job"},
		Main: func(ctx context.Context, s *command.Setup) error {
			ran = s.Log != nil && s.Metrics != nil
			return errors.New("done")
		},
	}.Run(t.Context(), []string{"-metrics-addr", "127.0.0.1:0"}, nil, io.Discard)
	if err == nil || err.Error() != "done" || !ran {
		t.Errorf("Run = %v (main ran: %v), want main's error", err, ran)
	}
}

func TestCommandInterleaved(t *testing.T) {
	var cfg settings
	var pos []string
	err := command.Command{
		Name: "client", Settings: []command.Settings{command.Env("C_", &cfg)}, Interleaved: true,
		Args: func(rest []string) error { pos = rest; return nil },
	}.Parse([]string{"host", "-delay", "3s", "port"}, nil, io.Discard)
	if err != nil || strings.Join(pos, " ") != "host port" || cfg.Delay != 3*time.Second {
		t.Errorf("Parse = %v, args %q, delay %v; want host port and 3s", err, pos, cfg.Delay)
	}
}
