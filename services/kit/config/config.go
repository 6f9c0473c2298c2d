// Package config loads a service's settings from environment variables
// (github.com/caarlos0/env/v11) and lets command-line flags mirror and
// override them, so that a container is configured by env and a person at a
// terminal by flags, with one struct describing both.
//
// A settings struct tags each field with `env` (the variable, without the
// service prefix), `envDefault`, and optionally `flag` (the flag name) and
// `help` (one line for --help):
//
//	type Config struct {
//		Addr string `env:"ADDR" envDefault:":9000" flag:"addr" help:"listen address"`
//	}
//
// A []string field's flag is repeatable ("-c one -c two"); an `arg` tag
// names its value in --help.
//
// Settings that several services share are a struct of their own, embedded
// (netserve.Settings): its fields read the service's prefix like the
// others. A default that differs by service, and so cannot be the shared
// struct's tag, is set by the service's SetDefaults (Defaulter).
package config

import (
	"encoding"
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// A Defaulter sets the defaults that a tag cannot give, values known only
// when the program runs (a listen port from the lab map), on fields that
// have no envDefault. Load and Set.Add call SetDefaults before reading the
// environment, so a variable or a flag still wins, and --help shows the
// value as the flag's default.
type Defaulter interface {
	SetDefaults()
}

func setDefaults(ptr any) {
	if d, ok := ptr.(Defaulter); ok {
		d.SetDefaults()
	}
}

// Load parses environ (KEY=VALUE strings, as os.Environ returns) into a new
// T, after its SetDefaults when T is a Defaulter, reading each field's
// variable with prefix prepended.
func Load[T any](prefix string, environ []string) (T, error) {
	var cfg T
	setDefaults(&cfg)
	err := env.ParseWithOptions(&cfg, env.Options{
		Prefix:      prefix,
		Environment: envMap(environ),
	})
	return cfg, err
}

func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// Set gathers settings structs and the flags that mirror them for one
// command. Values come from envDefault, then the environment, then flags.
type Set struct {
	fs      *flag.FlagSet
	environ map[string]string
	usage   string
	rows    []helpRow
}

type helpRow struct {
	flag, env, help, def, kind string
}

// NewSet returns a Set for the command name. usage is printed first by
// --help: a synopsis and a short description.
func NewSet(name, usage string, environ []string, out io.Writer) *Set {
	s := &Set{
		fs:      flag.NewFlagSet(name, flag.ContinueOnError),
		environ: envMap(environ),
		usage:   usage,
	}
	s.fs.SetOutput(out)
	// The flag package calls Usage for -h and for every error; Parse prints
	// the full usage only for -h, so a typo gets one line, not a screenful.
	s.fs.Usage = func() {}
	return s
}

// FlagSet exposes the underlying flags, for flags that mirror no variable.
func (s *Set) FlagSet() *flag.FlagSet { return s.fs }

// Add loads ptr (a pointer to a settings struct) from the environment with
// prefix, after its SetDefaults when it is a Defaulter, and registers a flag
// for every field tagged `flag`, defaulting to the loaded value so that a
// flag given on the command line wins. The fields of embedded structs count
// as the struct's own, at any depth.
func (s *Set) Add(prefix string, ptr any) error {
	setDefaults(ptr)
	if err := env.ParseWithOptions(ptr, env.Options{Prefix: prefix, Environment: s.environ}); err != nil {
		return s.explain(prefix, ptr, err)
	}
	return s.addFields(prefix, reflect.ValueOf(ptr).Elem())
}

func (s *Set) addFields(prefix string, v reflect.Value) error {
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		var err error
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			err = s.addFields(prefix, fv)
		} else {
			err = s.addField(prefix, f, fv)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

var (
	stringsType         = reflect.TypeFor[[]string]()
	durationType        = reflect.TypeFor[time.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func (s *Set) addField(prefix string, f reflect.StructField, fv reflect.Value) error {
	name := f.Tag.Get("flag")
	if name == "" {
		return nil
	}
	help := f.Tag.Get("help")
	row := helpRow{flag: name, help: help}
	if e := f.Tag.Get("env"); e != "" {
		row.env = prefix + strings.Split(e, ",")[0]
	}
	p := fv.Addr().Interface()
	switch {
	case f.Type == durationType:
		s.fs.DurationVar(p.(*time.Duration), name, fv.Interface().(time.Duration), help)
		row.kind = "duration"
	case reflect.PointerTo(f.Type).Implements(textUnmarshalerType):
		s.fs.Var(textValue{fv}, name, help)
		row.kind = "value"
	case f.Type == stringsType:
		s.fs.Var(&stringsValue{p: p.(*[]string)}, name, help+" (repeatable)")
		row.kind, row.help = flag.UnquoteUsage(s.fs.Lookup(name))
		if arg := f.Tag.Get("arg"); arg != "" {
			row.kind = arg
		}
	default:
		switch f.Type.Kind() {
		case reflect.String:
			s.fs.StringVar(p.(*string), name, fv.String(), help)
			row.kind = "string"
		case reflect.Bool:
			s.fs.BoolVar(p.(*bool), name, fv.Bool(), help)
		case reflect.Int:
			s.fs.IntVar(p.(*int), name, int(fv.Int()), help)
			row.kind = "int"
		case reflect.Int64:
			s.fs.Int64Var(p.(*int64), name, fv.Int(), help)
			row.kind = "int"
		case reflect.Uint64:
			s.fs.Uint64Var(p.(*uint64), name, fv.Uint(), help)
			row.kind = "uint"
		case reflect.Float64:
			s.fs.Float64Var(p.(*float64), name, fv.Float(), help)
			row.kind = "float"
		default:
			return fmt.Errorf("config: field %s: flag of kind %s not supported", f.Name, f.Type)
		}
	}
	row.def = s.fs.Lookup(name).DefValue
	s.rows = append(s.rows, row)
	return nil
}

// stringsValue is a repeatable flag: each use appends one value, and the
// first replaces what the environment gave.
type stringsValue struct {
	p   *[]string
	set bool
}

func (v *stringsValue) String() string {
	if v.p == nil {
		return ""
	}
	return strings.Join(*v.p, ", ")
}

func (v *stringsValue) Set(s string) error {
	if !v.set {
		*v.p, v.set = nil, true
	}
	*v.p = append(*v.p, s)
	return nil
}

// textValue adapts a field whose pointer is an encoding.TextUnmarshaler to
// flag.Value.
type textValue struct{ v reflect.Value }

func (t textValue) String() string {
	if !t.v.IsValid() {
		return ""
	}
	if m, ok := t.v.Interface().(encoding.TextMarshaler); ok {
		b, _ := m.MarshalText()
		return string(b)
	}
	if s, ok := t.v.Interface().(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprint(t.v.Interface())
}

func (t textValue) Set(s string) error {
	return t.v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s))
}

// Parse applies args over the loaded settings and returns the positional
// arguments left. It returns flag.ErrHelp after printing usage for -h.
func (s *Set) Parse(args []string) ([]string, error) {
	if err := s.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			s.PrintUsage()
			return nil, err
		}
		return nil, &ParseError{Err: err}
	}
	return s.fs.Args(), nil
}

// ParseError is a command-line error that Parse has already reported,
// with the usage, on the Set's output.
type ParseError struct{ Err error }

func (e *ParseError) Error() string { return e.Err.Error() }
func (e *ParseError) Unwrap() error { return e.Err }

// PrintUsage writes the usage text and every flag with its variable and
// default to the Set's output.
func (s *Set) PrintUsage() {
	w := s.fs.Output()
	fmt.Fprintln(w, strings.TrimSpace(s.usage))
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Flags (each also read from the environment variable shown; a flag wins):")
	listed := map[string]bool{}
	for _, r := range s.rows {
		listed[r.flag] = true
		name := "-" + r.flag
		if r.kind != "" {
			name += " " + r.kind
		}
		fmt.Fprintf(w, "  %s\n    \t%s", name, r.help)
		switch {
		case r.def == "" || r.def == "0" || r.def == "false" || r.def == "0s":
		case r.kind == "string":
			fmt.Fprintf(w, " (default %s)", strconv.Quote(r.def))
		default:
			fmt.Fprintf(w, " (default %s)", r.def)
		}
		if r.env != "" {
			fmt.Fprintf(w, " [$%s]", r.env)
		}
		fmt.Fprintln(w)
	}
	s.fs.VisitAll(func(f *flag.Flag) {
		if listed[f.Name] {
			return
		}
		name, help := flag.UnquoteUsage(f)
		line := "  -" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, help)
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" && f.DefValue != "[]" {
			fmt.Fprintf(w, " (default %q)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

// explain rewrites env's parse errors, which name the Go field ("MaxFile"),
// to name the variable and the value a person set (FILESTREAM_MAX_FILE=ten).
func (s *Set) explain(prefix string, ptr any, err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	vars := map[string]string{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				walk(f.Type)
			} else if e := f.Tag.Get("env"); e != "" {
				vars[f.Name] = prefix + strings.Split(e, ",")[0]
			}
		}
	}
	walk(reflect.TypeOf(ptr).Elem())
	msgs := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) && vars[pe.Name] != "" {
			name := vars[pe.Name]
			msgs = append(msgs, fmt.Errorf("%s=%q: not a valid %s: %w", name, s.environ[name], pe.Type, pe.Err))
			continue
		}
		msgs = append(msgs, e)
	}
	return errors.Join(msgs...)
}

// IsHelp reports whether err is the request for help from Parse.
func IsHelp(err error) bool { return errors.Is(err, flag.ErrHelp) }
