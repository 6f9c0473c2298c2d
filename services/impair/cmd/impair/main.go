// Command impair shapes the links of the lab's containers: random loss, a
// rate limit, and delay with jitter (where the kernel has netem), on all
// traffic to and from a service's containers, both directions.
//
//	impair set SERVICE [-loss 5%] [-rate 2mbit] [-delay 40ms] [-jitter 10ms]
//	impair set SERVICE                 (no setting: clear)
//	impair clear SERVICE
//	impair list [-json]
//
// On the host it finds the service's running containers (every replica or
// fleet instance) with the docker CLI and, for each, runs its own image
// (socklab/impair:dev) in the container's network namespace with NET_ADMIN
// only: `impair apply` and `impair show` are what runs there. After a
// change it sends the list in force to the dashboard (PUT
// /api/impairments, best effort, 2 s).
//
// Variables (flags mirror them and win): IMPAIR_PROJECT (compose project;
// default $COMPOSE_PROJECT_NAME, else socklab), IMPAIR_IMAGE,
// IMPAIR_DASHBOARD (empty: do not tell the dashboard), IMPAIR_DEV (the
// interface in the container, eth0), IMPAIR_TIMEOUT, IMPAIR_DOCKER.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/socklab/socklab/services/impair/internal/docker"
	"github.com/socklab/socklab/services/impair/internal/report"
	"github.com/socklab/socklab/services/impair/internal/shape"
	"github.com/socklab/socklab/services/kit/config"
	"github.com/socklab/socklab/services/kit/lab"
	"github.com/vishvananda/netns"
)

const usage = `usage:
  impair set SERVICE [-loss 5%] [-rate 2mbit] [-delay 40ms] [-jitter 10ms]   (no setting clears)
  impair clear SERVICE
  impair list [-json]
  impair apply [-dev eth0] [settings]   in a network namespace: apply (no setting clears), print the state
  impair show [-dev eth0]               in a network namespace: print the state (null: none)
`

// Config is the host side's settings.
type Config struct {
	Project   string        `env:"PROJECT" flag:"project" help:"compose project (default: $COMPOSE_PROJECT_NAME, else socklab)"`
	Image     string        `env:"IMAGE" envDefault:"socklab/impair:dev" flag:"image" help:"image run in a container's network namespace"`
	Dashboard string        `env:"DASHBOARD" envDefault:"http://127.0.0.1:8080" flag:"dashboard" help:"dashboard told of every change (empty: none)"`
	Dev       string        `env:"DEV" envDefault:"eth0" flag:"dev" help:"interface in the container's namespace"`
	Timeout   time.Duration `env:"TIMEOUT" envDefault:"60s" flag:"timeout" help:"bound on the whole command"`
	Docker    string        `env:"DOCKER" envDefault:"docker" flag:"docker" help:"the docker command"`
}

// errUsage marks a wrong command line (exit status 2).
var errUsage = errors.New("usage")

func main() {
	err := run(context.Background(), os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "impair:", err)
		os.Exit(1)
	}
}

// settingFlags are the flags that say what an impairment does.
type settingFlags struct{ loss, rate, delay, jitter string }

func (f *settingFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.loss, "loss", "", "drop this share of packets at random, like 5%")
	fs.StringVar(&f.rate, "rate", "", "limit to this rate, like 2mbit (tc units)")
	fs.StringVar(&f.delay, "delay", "", "hold every packet this long, like 40ms (needs netem)")
	fs.StringVar(&f.jitter, "jitter", "", "vary the delay by up to this much, like 10ms (needs netem)")
}

func (f *settingFlags) settings() (shape.Settings, error) {
	var s shape.Settings
	var err error
	if f.loss != "" {
		if s.LossPercent, err = shape.ParseLoss(f.loss); err != nil {
			return s, err
		}
	}
	if f.rate != "" {
		if s.Rate, err = shape.ParseRate(f.rate); err != nil {
			return s, err
		}
	}
	if f.delay != "" {
		if s.Delay, err = shape.ParseDuration(f.delay); err != nil {
			return s, err
		}
	}
	if f.jitter != "" {
		if s.Jitter, err = shape.ParseDuration(f.jitter); err != nil {
			return s, err
		}
	}
	return s, s.Validate()
}

// args returns the flags for `impair apply` in the target's namespace.
func (f *settingFlags) args() []string {
	var out []string
	for _, p := range [][2]string{{"-loss", f.loss}, {"-rate", f.rate}, {"-delay", f.delay}, {"-jitter", f.jitter}} {
		if p[1] != "" {
			out = append(out, p[0], p[1])
		}
	}
	return out
}

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return errUsage
	}
	cmd := args[0]
	set := config.NewSet("impair "+cmd, usage, environ, stderr)
	var cfg Config
	if err := set.Add("IMPAIR_", &cfg); err != nil {
		return err
	}
	var sf settingFlags
	var asJSON bool
	var since string
	fs := set.FlagSet()
	switch cmd {
	case "set", "apply":
		sf.register(fs)
	}
	if cmd == "apply" {
		fs.StringVar(&since, "since", "", "when the impairment began (RFC 3339; default now)")
	}
	if cmd == "list" || cmd == "set" || cmd == "clear" {
		fs.BoolVar(&asJSON, "json", false, "print the list in force as JSON")
	}
	rest, err := set.Parse(args[1:])
	if err != nil {
		return err
	}
	// Flags may follow the service name too: impair set filestream -loss 10%.
	var service string
	if (cmd == "set" || cmd == "clear") && len(rest) > 0 {
		service = rest[0]
		if err := fs.Parse(rest[1:]); err != nil {
			return err
		}
		rest = fs.Args()
	}
	if len(rest) > 0 {
		return fmt.Errorf("%w: unexpected %q", errUsage, rest[0])
	}
	if cfg.Project == "" {
		cfg.Project = lab.Project
		for _, kv := range environ {
			if v, ok := strings.CutPrefix(kv, "COMPOSE_PROJECT_NAME="); ok && v != "" {
				cfg.Project = v
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	switch cmd {
	case "apply", "show":
		return here(cmd, cfg.Dev, sf, since, stdout)
	case "list":
		entries, err := list(ctx, cfg)
		if err != nil {
			return err
		}
		return write(stdout, entries, asJSON)
	case "set", "clear":
		if service == "" {
			return fmt.Errorf("%w: %s needs a SERVICE", errUsage, cmd)
		}
		s, err := sf.settings()
		if err != nil {
			return err
		}
		if err := change(ctx, cfg, service, sf, s.Zero(), stdout); err != nil {
			return err
		}
		entries, err := list(ctx, cfg)
		if err != nil {
			return err
		}
		tell(ctx, cfg, entries, stderr)
		if asJSON {
			return report.WriteJSON(stdout, entries)
		}
		return nil
	}
	return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
}

// here applies or shows the impairment of dev in this process's own
// network namespace and prints it as JSON (null: none).
func here(cmd, dev string, sf settingFlags, since string, stdout io.Writer) error {
	l, err := shape.Open(netns.None(), dev)
	if err != nil {
		return err
	}
	defer l.Close()
	if cmd == "apply" {
		s, err := sf.settings()
		if err != nil {
			return err
		}
		at := time.Now()
		if since != "" {
			if at, err = time.Parse(time.RFC3339, since); err != nil {
				return fmt.Errorf("since: %w", err)
			}
		}
		if err := l.Apply(s, at); err != nil {
			return err
		}
	}
	st, ok, err := l.Current()
	if err != nil {
		return err
	}
	if !ok {
		_, err := fmt.Fprintln(stdout, "null")
		return err
	}
	return json.NewEncoder(stdout).Encode(report.NewEntry("", "", st))
}

// targets lists the running containers of a service (all its fleet
// instances or replicas).
func targets(ctx context.Context, cfg Config, dc docker.Client, service string) ([]docker.Container, error) {
	names := []string{service}
	if s, ok := lab.Lookup(service); ok && s.Name == service {
		names = s.Names()
	}
	cs, err := dc.Containers(ctx, cfg.Project, lab.Network, names)
	if err != nil {
		return nil, err
	}
	if len(cs) == 0 {
		return nil, fmt.Errorf("no running container of %s in compose project %s (is the lab up?)", service, cfg.Project)
	}
	return cs, nil
}

// change applies (or clears) the settings on every container of service
// and says what it did.
func change(ctx context.Context, cfg Config, service string, sf settingFlags, clear bool, stdout io.Writer) error {
	dc := docker.Client{Docker: cfg.Docker, Image: cfg.Image}
	cs, err := targets(ctx, cfg, dc, service)
	if err != nil {
		return err
	}
	since := time.Now().UTC().Format(time.RFC3339)
	args := append([]string{"apply", "-dev", cfg.Dev, "-since", since}, sf.args()...)
	var errs []error
	for _, c := range cs {
		out, err := dc.RunIn(ctx, c.ID, args...)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.Name, err))
			continue
		}
		if clear {
			fmt.Fprintf(stdout, "%s: cleared\n", c.Name)
			continue
		}
		var e report.Entry
		if err := json.Unmarshal(bytes.TrimSpace(out), &e); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.Name, err))
			continue
		}
		fmt.Fprintf(stdout, "%s: %s, both directions\n", c.Name, e.Describe())
	}
	return errors.Join(errs...)
}

// list asks every container on the lab network what is in force, a few
// at a time.
func list(ctx context.Context, cfg Config) ([]report.Entry, error) {
	dc := docker.Client{Docker: cfg.Docker, Image: cfg.Image}
	cs, err := dc.Containers(ctx, cfg.Project, lab.Network, nil)
	if err != nil {
		return nil, err
	}
	found := make([]*report.Entry, len(cs))
	errs := make([]error, len(cs))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			out, err := dc.RunIn(ctx, c.ID, "show", "-dev", cfg.Dev)
			if err != nil {
				// A container that stopped since it was listed has
				// nothing in force.
				if !dc.Running(ctx, c.ID) {
					return
				}
				errs[i] = fmt.Errorf("%s: %w", c.Name, err)
				return
			}
			var e *report.Entry
			if err := json.Unmarshal(bytes.TrimSpace(out), &e); err != nil {
				errs[i] = fmt.Errorf("%s: %w", c.Name, err)
				return
			}
			if e != nil {
				e.Service, e.Container = c.Service, c.Name
				found[i] = e
			}
		})
	}
	wg.Wait()
	var entries []report.Entry
	for _, e := range found {
		if e != nil {
			entries = append(entries, *e)
		}
	}
	return entries, errors.Join(errs...)
}

func write(w io.Writer, entries []report.Entry, asJSON bool) error {
	if asJSON {
		return report.WriteJSON(w, entries)
	}
	return report.WriteTable(w, entries)
}

// tell sends the list to the dashboard; an absent dashboard is fine.
func tell(ctx context.Context, cfg Config, entries []report.Entry, stderr io.Writer) {
	if cfg.Dashboard == "" {
		return
	}
	err := report.Push(ctx, http.DefaultClient, cfg.Dashboard, entries, 2*time.Second)
	if err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
		fmt.Fprintf(stderr, "impair: dashboard not told (%v)\n", err)
	}
}
