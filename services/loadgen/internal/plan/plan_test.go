package plan

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/socklab/socklab/services/kit/config"
)

func TestBuild(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		edit    func(c *Config)
		want    string // a summary of the plan, or "error: <part of it>"
	}{
		{name: "defaults", want: "closed workers=16 duration=10s requests=0 autoreply-tcp=1@autoreply:9000"},
		{name: "open loop", edit: func(c *Config) { c.Rate, c.Connections, c.Requests = 500, 4, 1000 },
			want: "open rate=500 workers=4 duration=0s requests=1000 autoreply-tcp=1@autoreply:9000"},
		{name: "closed loop", edit: func(c *Config) { c.Concurrency, c.Duration = 3, time.Minute },
			want: "closed workers=3 duration=1m0s requests=0 autoreply-tcp=1@autoreply:9000"},
		{name: "env target", environ: []string{"LOADGEN_TARGET_AUTOREPLY_TCP=a:1", "LOADGEN_TARGET_CONNID=b:2"},
			want: "closed workers=16 duration=10s requests=0 autoreply-tcp=1@a:1"},
		{name: "target wins over env", environ: []string{"LOADGEN_TARGET_AUTOREPLY_TCP=a:1"},
			edit: func(c *Config) { c.Target = "c:3" },
			want: "closed workers=16 duration=10s requests=0 autoreply-tcp=1@c:3"},
		{name: "named target", edit: func(c *Config) { c.Target = "autoreply-tcp=c:3" },
			want: "closed workers=16 duration=10s requests=0 autoreply-tcp=1@c:3"},
		{name: "moviedb fleet", edit: func(c *Config) { c.Scenario = "moviedb-get" },
			want: "closed workers=16 duration=10s requests=0 moviedb-get=1@moviedb-1:5000,moviedb-2:5000,moviedb-3:5000"},
		{name: "mix", environ: []string{"LOADGEN_TARGET_CONNID=b:2"},
			edit: func(c *Config) {
				c.Scenario, c.Mix, c.Target = "mix", "autoreply-udp=3,connid,tinytcp=2", "tinytcp=t:4;autoreply-udp=u:5"
			},
			want: "closed workers=16 duration=10s requests=0 autoreply-udp=3@u:5 connid=1@b:2 tinytcp=2@t:4"},
		{name: "rate and concurrency", edit: func(c *Config) { c.Rate, c.Concurrency = 1, 1 }, want: "error: not both"},
		{name: "negative rate", edit: func(c *Config) { c.Rate = -1 }, want: "error: rate"},
		{name: "no connections", edit: func(c *Config) { c.Connections = 0 }, want: "error: connections"},
		{name: "negative duration", edit: func(c *Config) { c.Duration = -time.Second }, want: "error: duration"},
		{name: "no timeout", edit: func(c *Config) { c.Timeout = 0 }, want: "error: timeout"},
		{name: "unknown scenario", edit: func(c *Config) { c.Scenario = "nope" }, want: "error: no scenario"},
		{name: "bad mix", edit: func(c *Config) { c.Scenario, c.Mix = "mix", "nope=1" }, want: "error: no scenario"},
		{name: "plain target in a mix", edit: func(c *Config) { c.Scenario, c.Target = "mix", "a:1" }, want: "error: NAME=ADDR"},
		{name: "target of another scenario", edit: func(c *Config) { c.Target = "connid=a:1" }, want: "error: not in this run"},
		{name: "target of no scenario", edit: func(c *Config) { c.Target = "nope=a:1" }, want: "error: no scenario"},
		{name: "bad size", edit: func(c *Config) { c.Size = 0 }, want: "error: autoreply-tcp: size"},
		{name: "bad stream", edit: func(c *Config) { c.Scenario, c.StreamCount = "filestream-stream", 0 }, want: "error: stream count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Load[Config](Prefix, tt.environ)
			if err != nil {
				t.Fatal(err)
			}
			c.ID = "host"
			if tt.edit != nil {
				tt.edit(&c)
			}
			p, err := Build(c, tt.environ)
			var got string
			if err != nil {
				got = "error: " + err.Error()
			} else {
				got = summary(p)
			}
			if strings.HasPrefix(tt.want, "error: ") {
				if !strings.HasPrefix(got, "error: ") || !strings.Contains(got, strings.TrimPrefix(tt.want, "error: ")) {
					t.Errorf("Build = %s, want %s", got, tt.want)
				}
			} else if got != tt.want {
				t.Errorf("Build = %s\nwant    %s", got, tt.want)
			}
		})
	}
}

func summary(p *Plan) string {
	model := "closed"
	if p.Engine.Rate > 0 {
		model = fmt.Sprintf("open rate=%g", p.Engine.Rate)
	}
	s := fmt.Sprintf("%s workers=%d duration=%v requests=%d", model, p.Engine.Workers, p.Engine.Duration, p.Engine.Requests)
	for _, part := range p.Engine.Parts {
		s += fmt.Sprintf(" %s=%d@%s", part.Name, part.Weight, p.Targets[part.Name])
	}
	return s
}

func TestTagsDiffer(t *testing.T) {
	a, b := tagFor("loadgen-1"), tagFor("loadgen-1")
	if a == b || !strings.HasPrefix(a, "loadgen-1-") {
		t.Errorf("tags %q and %q: want distinct, starting with the ID", a, b)
	}
	if got := tagFor("a very/long host name.example.com"); len(got) > 16+1+8 || strings.ContainsAny(got, " /.") {
		t.Errorf("tagFor(long name) = %q", got)
	}
}

func TestTargetEnv(t *testing.T) {
	if got := TargetEnv("filestream-echo"); got != "LOADGEN_TARGET_FILESTREAM_ECHO" {
		t.Errorf("TargetEnv = %q", got)
	}
}
