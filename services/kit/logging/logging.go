// Package logging builds the zap logger every socklab command uses: JSON in
// containers, a readable console format on a terminal.
package logging

import (
	"fmt"
	"io"
	"os"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"
)

// Config selects the level and format. The variables are not prefixed by
// service: LOG_LEVEL and LOG_FORMAT are the same in every container.
type Config struct {
	Level  string `env:"LOG_LEVEL" envDefault:"info" flag:"log-level" help:"log level: debug, info, warn or error"`
	Format string `env:"LOG_FORMAT" envDefault:"auto" flag:"log-format" help:"log format: json, console, or auto (console when stderr is a terminal)"`
}

// New returns a logger writing to w. Format "auto" picks console when w is a
// terminal and JSON otherwise.
func New(cfg Config, w io.Writer) (*zap.Logger, error) {
	var level zapcore.Level
	if err := level.UnmarshalText([]byte(strings.ToLower(cfg.Level))); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", cfg.Level)
	}
	format := strings.ToLower(cfg.Format)
	if format == "" || format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "console"
		}
	}
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "ts"
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	var encoder zapcore.Encoder
	switch format {
	case "json":
		encoder = zapcore.NewJSONEncoder(enc)
	case "console":
		enc.EncodeLevel = zapcore.CapitalLevelEncoder
		encoder = zapcore.NewConsoleEncoder(enc)
	default:
		return nil, fmt.Errorf("log format %q: want json, console or auto", cfg.Format)
	}
	core := zapcore.NewCore(encoder, zapcore.Lock(zapcore.AddSync(w)), level)
	return zap.New(core, zap.ErrorOutput(zapcore.Lock(zapcore.AddSync(w)))), nil
}
