// Package plan turns loadgen's settings (LOADGEN_* variables and the flags
// that mirror them) into a run: the scenarios with their targets and
// weights, the load model and its bounds.
package plan

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/socklab/socklab/services/kit/lab"
	"github.com/socklab/socklab/services/loadgen/internal/engine"
	"github.com/socklab/socklab/services/loadgen/internal/result"
	"github.com/socklab/socklab/services/loadgen/internal/scenario"
)

// Prefix is the prefix of loadgen's environment variables.
const Prefix = "LOADGEN_"

// DefaultDuration bounds a run given neither a duration nor a number of
// requests.
const DefaultDuration = 10 * time.Second

// Config is loadgen's settings.
type Config struct {
	Scenario    string        `env:"SCENARIO" envDefault:"autoreply-tcp" flag:"scenario" help:"what to send: a scenario name (see 'loadgen scenarios') or mix"`
	Mix         string        `env:"MIX" flag:"mix" help:"scenarios and weights of -scenario mix: NAME=WEIGHT,... (empty: the lab's default mix)"`
	Target      string        `env:"TARGET" flag:"target" help:"server to load: HOST:PORT (moviedb: HOST:PORT,HOST:PORT,...), or for a mix NAME=ADDR entries separated by spaces; wins over LOADGEN_TARGET_<SCENARIO>"`
	Rate        float64       `env:"RATE" flag:"rate" help:"open loop: requests per second over all connections, latency measured from when each was due"`
	Connections int           `env:"CONNECTIONS" envDefault:"16" flag:"connections" help:"connections (workers) of the open loop, or requests in flight of a closed loop without -concurrency"`
	Concurrency int           `env:"CONCURRENCY" flag:"concurrency" help:"closed loop: requests in flight, each sent when the previous answer came (not with -rate)"`
	Duration    time.Duration `env:"DURATION" flag:"duration" help:"stop after this long (10s when neither -duration nor -requests is given)"`
	Requests    int64         `env:"REQUESTS" flag:"requests" help:"stop after this many requests"`
	Timeout     time.Duration `env:"TIMEOUT" envDefault:"2s" flag:"timeout" help:"longest wait for an answer; later is a timeout (UDP: a loss)"`
	Size        int           `env:"SIZE" envDefault:"64" flag:"size" help:"payload bytes of each message (autoreply, tinytcp, filestream-echo)"`
	FileSize    int64         `env:"FILE_SIZE" envDefault:"65536" flag:"file-size" help:"bytes of each file asked for (filestream-file)"`
	StreamCount int           `env:"STREAM_COUNT" envDefault:"10" flag:"stream-count" help:"packets of each stream asked for (filestream-stream)"`
	StreamGap   time.Duration `env:"STREAM_INTERVAL" envDefault:"1ms" flag:"stream-interval" help:"time between a stream's packets (filestream-stream)"`
	StreamSize  int           `env:"STREAM_SIZE" envDefault:"64" flag:"stream-size" help:"bytes of each stream packet message (filestream-stream)"`
	ID          string        `env:"ID" flag:"id" help:"name of this generator in results (default: the hostname)"`
	Results     string        `env:"RESULTS" flag:"results" help:"directory to write <id>.json, the result with its latency histogram, into"`
	JSON        bool          `env:"JSON" flag:"json" help:"progress as JSON lines on stderr and the result as JSON on stdout"`
	Progress    time.Duration `env:"PROGRESS" envDefault:"1s" flag:"progress" help:"interval of progress lines (0: none)"`
}

// Plan is a run ready to go.
type Plan struct {
	Engine engine.Config
	Meta   result.Meta
	// Targets maps each scenario to its target.
	Targets map[string]string
}

// TargetEnv is the variable naming the target of scenario name, such as
// LOADGEN_TARGET_AUTOREPLY_TCP.
func TargetEnv(name string) string {
	return Prefix + "TARGET_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Build checks c and makes the plan; environ supplies the per-scenario
// target variables. Its errors are usage errors.
func Build(c Config, environ []string) (*Plan, error) {
	var mix []scenario.Weighted
	if c.Scenario == scenario.Mix {
		var err error
		spec := c.Mix
		if spec == "" {
			spec = lab.DefaultMix
		}
		if mix, err = scenario.ParseMix(spec); err != nil {
			return nil, err
		}
	} else {
		if _, ok := scenario.Lookup(c.Scenario); !ok {
			return nil, fmt.Errorf("no scenario %q; want one of %s", c.Scenario, strings.Join(scenario.Names(), ", "))
		}
		mix = []scenario.Weighted{{Name: c.Scenario, Weight: 1}}
	}

	p := &Plan{Targets: map[string]string{}}
	p.Meta = result.Meta{ID: c.ID, Scenario: c.Scenario, Datagram: map[string]bool{}}
	switch {
	case c.Rate < 0:
		return nil, errors.New("rate must not be negative")
	case c.Rate > 0 && c.Concurrency > 0:
		return nil, errors.New("give -rate (open loop) or -concurrency (closed loop), not both")
	case c.Concurrency < 0 || c.Connections < 1:
		return nil, errors.New("connections must be at least 1 and concurrency not negative")
	case c.Rate > 0:
		p.Engine.Rate, p.Engine.Workers = c.Rate, c.Connections
	case c.Concurrency > 0:
		p.Engine.Workers = c.Concurrency
	default:
		p.Engine.Workers = c.Connections
	}
	if p.Engine.Workers > engine.MaxWorkers {
		return nil, fmt.Errorf("at most %d connections", engine.MaxWorkers)
	}
	p.Meta.Rate, p.Meta.Connections = p.Engine.Rate, p.Engine.Workers
	if c.Duration < 0 || c.Requests < 0 {
		return nil, errors.New("duration and requests must not be negative")
	}
	p.Engine.Duration, p.Engine.Requests = c.Duration, c.Requests
	if c.Duration == 0 && c.Requests == 0 {
		p.Engine.Duration = DefaultDuration
	}
	if c.Timeout <= 0 {
		return nil, errors.New("timeout must be positive")
	}
	if c.Progress < 0 {
		return nil, errors.New("progress interval must not be negative")
	}

	targets, err := parseTargets(c.Target, c.Scenario == scenario.Mix)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	tag := tagFor(c.ID)
	for _, w := range mix {
		spec, _ := scenario.Lookup(w.Name)
		target := spec.Target
		if v := env[TargetEnv(w.Name)]; v != "" {
			target = v
		}
		if v, ok := targets[w.Name]; ok {
			target = v
		} else if v, ok := targets[""]; ok {
			target = v
		}
		delete(targets, w.Name)
		p.Targets[w.Name] = target
		sc, err := spec.New(scenario.Options{
			Target: target, Timeout: c.Timeout, Size: c.Size,
			FileSize: c.FileSize, StreamCount: c.StreamCount, StreamInterval: c.StreamGap, StreamSize: c.StreamSize,
			Tag: tag,
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", w.Name, err)
		}
		p.Engine.Parts = append(p.Engine.Parts, engine.Part{Name: w.Name, Weight: w.Weight, Scenario: sc})
		p.Meta.Datagram[w.Name] = spec.Datagram
	}
	delete(targets, "")
	for name := range targets {
		return nil, fmt.Errorf("target for %s, which is not in this run", name)
	}
	return p, p.Engine.Validate()
}

// parseTargets reads -target: one address (list) for the scenario, or
// NAME=ADDR entries separated by spaces or semicolons. A plain address is
// returned under "".
func parseTargets(s string, mix bool) (map[string]string, error) {
	out := map[string]string{}
	s = strings.TrimSpace(s)
	if s == "" {
		return out, nil
	}
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ';' })
	for _, f := range fields {
		name, addr, ok := strings.Cut(f, "=")
		if !ok {
			if mix || len(fields) > 1 {
				return nil, fmt.Errorf("target %q: in a mix, give NAME=ADDR for each scenario", f)
			}
			out[""] = f
			continue
		}
		if _, known := scenario.Lookup(name); !known {
			return nil, fmt.Errorf("target %q: no scenario %q", f, name)
		}
		if addr == "" {
			return nil, fmt.Errorf("target %q: empty address", f)
		}
		out[name] = addr
	}
	return out, nil
}

// tagFor makes a tag unique to this run of this generator: its ID (cut
// short) and random hex.
func tagFor(id string) string {
	var b [4]byte
	rand.Read(b[:])
	id = strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' {
			return r
		}
		return -1
	}, id)
	if len(id) > 16 {
		id = id[:16]
	}
	if id == "" {
		id = "lg"
	}
	return id + "-" + hex.EncodeToString(b[:])
}
