package capture

import (
	"strings"
	"testing"
	"time"

	"github.com/socklab/socklab/services/kit/config"
)

func TestConfigDefaults(t *testing.T) {
	c, err := config.Load[Config]("CAPTURE_", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Iface: "socklab0", Dir: "/captures", Prefix: "socklab", KernelFilter: true, Snaplen: 262144, RingBytes: 64 << 20, RotateBytes: 50_000_000,
		Keep: 10, Wait: 30 * time.Second, Promisc: true, FlushEvery: time.Second, Heartbeat: 5 * time.Second, LogEvery: 30 * time.Second,
	}
	if c != want {
		t.Errorf("defaults %+v, want %+v", c, want)
	}
	if _, err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestConfigFromEnv(t *testing.T) {
	c, err := config.Load[Config]("CAPTURE_", []string{
		"CAPTURE_IFACE=lo", "CAPTURE_ROTATE_BYTES=64MiB", "CAPTURE_ROTATE_EVERY=10m", "CAPTURE_KEEP=0",
		"CAPTURE_FILTER=tcp port 40000", "CAPTURE_COUNT=3", "CAPTURE_PROMISC=false", "CAPTURE_RING_BYTES=8MiB",
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.Validate()
	if err != nil || c.Iface != "lo" || c.RotateBytes != 64<<20 || c.RotateEvery != 10*time.Minute || c.Keep != 0 ||
		c.Count != 3 || c.Promisc || c.RingBytes != 8<<20 || f.String() != "tcp port 40000" {
		t.Errorf("config %+v, filter %v, %v", c, f, err)
	}
}

func TestConfigValidate(t *testing.T) {
	ok, _ := config.Load[Config]("CAPTURE_", nil)
	tests := []struct {
		change func(*Config)
		want   string
	}{
		{func(c *Config) { c.Filter = "tcp port x" }, `filter "tcp port x": port "x"`},
		{func(c *Config) { c.Iface = "" }, "iface: empty"},
		{func(c *Config) { c.Dir = "" }, "dir: empty"},
		{func(c *Config) { c.Prefix = "../x" }, `prefix "../x"`},
		{func(c *Config) { c.Snaplen = 10 }, "snaplen 10: want 64 to 262144"},
		{func(c *Config) { c.Snaplen = 262145 }, "snaplen 262145"},
		{func(c *Config) { c.Keep = -1 }, "keep -1"},
		{func(c *Config) { c.Count = -1 }, "count -1"},
		{func(c *Config) { c.RotateBytes = -1 }, "rotate-bytes -1"},
		{func(c *Config) { c.RotateEvery = -time.Second }, "rotate-every -1s"},
		{func(c *Config) { c.FlushEvery = 0 }, "flush-every 0s: want at least 1ms"},
		{func(c *Config) { c.Heartbeat = 0 }, "heartbeat 0s"},
		{func(c *Config) { c.RingBytes = 1<<20 - 1 }, "ring-bytes 1048575: want 1MiB to 1GiB"},
		{func(c *Config) { c.RingBytes = 1<<30 + 1 }, "ring-bytes 1073741825"},
	}
	for _, tt := range tests {
		c := ok
		tt.change(&c)
		if _, err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %v, want %q", c, err, tt.want)
		}
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		give    string
		want    ByteSize
		wantStr string
		wantErr bool
	}{
		{give: "0", want: 0, wantStr: "0"},
		{give: "1000", want: 1000, wantStr: "1KB"},
		{give: "1500", want: 1500, wantStr: "1500"},
		{give: "50MB", want: 50_000_000, wantStr: "50MB"},
		{give: "50mb", want: 50_000_000, wantStr: "50MB"},
		{give: "64MiB", want: 64 << 20, wantStr: "64MiB"},
		{give: "1 GiB", want: 1 << 30, wantStr: "1GiB"},
		{give: "2GB", want: 2e9, wantStr: "2GB"},
		{give: "10KiB", want: 10240, wantStr: "10KiB"},
		{give: "7B", want: 7, wantStr: "7"},
		{give: "", wantErr: true},
		{give: "MB", wantErr: true},
		{give: "-1MB", wantErr: true},
		{give: "1.5MB", wantErr: true},
		{give: "50 megs", wantErr: true},
		{give: "9999999999GiB", wantErr: true},
	}
	for _, tt := range tests {
		var b ByteSize
		err := b.UnmarshalText([]byte(tt.give))
		if (err != nil) != tt.wantErr || (!tt.wantErr && (b != tt.want || b.String() != tt.wantStr)) {
			t.Errorf("UnmarshalText(%q) = %d (%s), %v; want %d (%s), error %v", tt.give, b, b, err, tt.want, tt.wantStr, tt.wantErr)
		}
	}
}
