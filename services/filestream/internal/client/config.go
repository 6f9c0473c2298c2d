package client

import (
	"fmt"
	"time"
)

// Config is the filestream-client settings.
type Config struct {
	Protocol  string        `env:"PROTOCOL" envDefault:"tcp" flag:"protocol" help:"tcp or udp"`
	Server    string        `env:"SERVER" flag:"server" help:"server HOST:PORT; when empty, the first line of -hosts (asked for at a terminal), else localhost:9001"`
	Hosts     string        `env:"HOSTS" flag:"hosts" help:"file of host:port lines, the first the default"`
	PrintFile bool          `env:"PRINT_FILE" flag:"print-file" help:"print received files (default: only their size, checksum, time and throughput)"`
	Timeout   time.Duration `env:"TIMEOUT" envDefault:"2s" flag:"timeout" help:"wait this long for the next byte or packet; over UDP the fallback end of a file or stream whose END is lost"`
	Commands  []string      `flag:"c" arg:"command" help:"run this command (then standard input is not read)"`
}

// DefaultServer is the server when neither -server nor -hosts names one.
const DefaultServer = "localhost:9001"

// Validate reports settings the client cannot run with.
func (c Config) Validate() error {
	if c.Protocol != "tcp" && c.Protocol != "udp" {
		return fmt.Errorf("protocol must be tcp or udp, not %q", c.Protocol)
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("timeout must be positive")
	}
	if c.Server != "" {
		if err := checkHostPort(c.Server); err != nil {
			return fmt.Errorf("server: %w", err)
		}
	}
	return nil
}
