package config_test

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/socklab/socklab/services/kit/config"
)

type settings struct {
	Addr    string        `env:"ADDR" envDefault:":9000" flag:"addr" help:"listen address"`
	Max     int           `env:"MAX" envDefault:"10" flag:"max" help:"a limit"`
	Timeout time.Duration `env:"TIMEOUT" envDefault:"5s" flag:"timeout" help:"a wait"`
	Quiet   bool          `env:"QUIET" flag:"q" help:"less output"`
	Hidden  string        `env:"HIDDEN" envDefault:"h"`
}

func TestSetPrecedence(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		args    []string
		want    settings
	}{
		{"defaults", nil, nil, settings{":9000", 10, 5 * time.Second, false, "h"}},
		{"env", []string{"SVC_ADDR=:1", "SVC_MAX=3", "SVC_TIMEOUT=1m", "SVC_QUIET=true", "SVC_HIDDEN=x", "ADDR=:wrong"}, nil,
			settings{":1", 3, time.Minute, true, "x"}},
		{"flags win", []string{"SVC_ADDR=:1", "SVC_MAX=3"}, []string{"-addr", ":2", "-q"},
			settings{":2", 3, 5 * time.Second, true, "h"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseSet[settings](t, tt.environ, tt.args); got != tt.want {
				t.Errorf("env %q args %q = %+v, want %+v", tt.environ, tt.args, got, tt.want)
			}
		})
	}
}

func TestSetErrors(t *testing.T) {
	var s settings
	set := config.NewSet("svc", "usage: svc", []string{"SVC_MAX=ten"}, &bytes.Buffer{})
	err := set.Add("SVC_", &s)
	if err == nil || !strings.Contains(err.Error(), `SVC_MAX="ten"`) {
		t.Errorf("Add with SVC_MAX=ten = %v, want an error naming the variable and its value", err)
	}
	var out bytes.Buffer
	set = config.NewSet("svc", "usage: svc", nil, &out)
	set.Add("SVC_", &s)
	_, err = set.Parse([]string{"-nope"})
	var perr *config.ParseError
	if !errors.As(err, &perr) {
		t.Errorf("Parse(-nope) = %v, want a *ParseError", err)
	}
	if strings.Contains(out.String(), "usage:") {
		t.Errorf("a bad flag printed the whole usage:\n%s", out.String())
	}
}

func TestHelpNamesVariables(t *testing.T) {
	var s settings
	var out bytes.Buffer
	set := config.NewSet("svc", "usage: svc [flags]", nil, &out)
	set.Add("SVC_", &s)
	_, err := set.Parse([]string{"-h"})
	if !config.IsHelp(err) {
		t.Fatalf("Parse(-h) = %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"usage: svc [flags]", "-addr string", "$SVC_ADDR", `(default ":9000")`, "-timeout duration", "(default 5s)", "$SVC_QUIET"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
}

func TestLoad(t *testing.T) {
	got, err := config.Load[settings]("X_", []string{"X_MAX=7"})
	if err != nil || got.Max != 7 || got.Addr != ":9000" {
		t.Errorf("Load = %+v, %v; want Max 7 and the default Addr", got, err)
	}
}

func TestRepeatableFlag(t *testing.T) {
	type settings struct {
		Cmds []string `env:"CMDS" flag:"c" help:"a command"`
	}
	tests := []struct {
		args    []string
		environ []string
		want    []string
	}{
		{nil, nil, nil},
		{[]string{"-c", "a", "-c", "b c"}, nil, []string{"a", "b c"}},
		{nil, []string{"X_CMDS=d,e"}, []string{"d", "e"}},
		{[]string{"-c", "a"}, []string{"X_CMDS=d,e"}, []string{"a"}},
	}
	for _, tt := range tests {
		var s settings
		set := config.NewSet("x", "usage", tt.environ, io.Discard)
		if err := set.Add("X_", &s); err != nil {
			t.Fatal(err)
		}
		if _, err := set.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.Cmds, tt.want) {
			t.Errorf("Parse(%q) with %q = %q, want %q", tt.args, tt.environ, s.Cmds, tt.want)
		}
	}
}

// Shared is a settings struct several services embed; Inner is embedded in
// it in turn. Both are exported, as env sets only exported fields.
type Shared struct {
	Listen string `env:"LISTEN" flag:"listen" help:"listen address"` // set by SetDefaults
	Inner
}

type Inner struct {
	Limit int `env:"LIMIT" envDefault:"4" flag:"limit" help:"a limit"`
}

type service struct {
	Name string `env:"NAME" envDefault:"n" flag:"name" help:"a name"`
	Shared
}

func (s *service) SetDefaults() { s.Listen = ":7000" }

// TestEmbeddedAndDefaulter: the fields of embedded structs, at any depth,
// read the service's prefix and get flags; SetDefaults gives a field without
// envDefault its default, which --help shows and a variable or a flag
// overrides, as for a tag's default.
func TestEmbeddedAndDefaulter(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		args    []string
		want    service
	}{
		{"defaults", nil, nil, service{"n", Shared{":7000", Inner{4}}}},
		// An empty variable is unset, as for a field with envDefault.
		{"empty env", []string{"SVC_LISTEN="}, nil, service{"n", Shared{":7000", Inner{4}}}},
		{"env", []string{"SVC_LISTEN=:1", "SVC_LIMIT=5"}, nil, service{"n", Shared{":1", Inner{5}}}},
		{"flags win", []string{"SVC_LISTEN=:1", "SVC_LIMIT=5"}, []string{"-listen", ":2", "-limit", "6"}, service{"n", Shared{":2", Inner{6}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseSet[service](t, tt.environ, tt.args); got != tt.want {
				t.Errorf("env %q args %q = %+v, want %+v", tt.environ, tt.args, got, tt.want)
			}
		})
	}

	var s service
	var out bytes.Buffer
	set := config.NewSet("svc", "usage: svc", nil, &out)
	if err := set.Add("SVC_", &s); err != nil {
		t.Fatal(err)
	}
	if _, err := set.Parse([]string{"-h"}); !config.IsHelp(err) {
		t.Fatalf("Parse(-h) = %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{`(default ":7000") [$SVC_LISTEN]`, "(default 4) [$SVC_LIMIT]", `(default "n") [$SVC_NAME]`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}

	loaded, err := config.Load[service]("SVC_", []string{"SVC_LIMIT=9"})
	if want := (service{"n", Shared{":7000", Inner{9}}}); err != nil || loaded != want {
		t.Errorf("Load = %+v, %v; want %+v", loaded, err, want)
	}

	set = config.NewSet("svc", "usage: svc", []string{"SVC_LIMIT=many"}, io.Discard)
	if err := set.Add("SVC_", &s); err == nil || !strings.Contains(err.Error(), `SVC_LIMIT="many"`) {
		t.Errorf("Add with SVC_LIMIT=many = %v, want an error naming the variable and its value", err)
	}
}

// parseSet adds a T under the prefix SVC_ to a Set over environ, parses
// args and returns the T.
func parseSet[T any](t *testing.T, environ, args []string) T {
	t.Helper()
	var got T
	set := config.NewSet("svc", "usage: svc", environ, io.Discard)
	if err := set.Add("SVC_", &got); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if _, err := set.Parse(args); err != nil {
		t.Fatalf("Parse(%q): %v", args, err)
	}
	return got
}
