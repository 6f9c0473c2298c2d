package wireshark

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socklab/socklab/services/kit/lab"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ and the generated port table")

// protocols are the filter names of the five dissectors.
var protocols = []string{"autoreply", "tinytcp", "filestream", "connid", "moviedb"}

// pluginHome returns a HOME in which the dissectors are installed the way
// `make wireshark` installs them (a socklab folder in the personal Lua
// plugin folder), so tshark loads them without flags, as it would for a
// person.
func pluginHome(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Fatal("tshark is not installed (make deps installs it):", err)
	}
	home := t.TempDir()
	dst := filepath.Join(home, ".local", "lib", "wireshark", "plugins", "socklab")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("plugins/*.lua")
	if err != nil || len(files) == 0 {
		t.Fatalf("no plugins/*.lua: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return home
}

// tshark runs tshark with the plugins of home and returns its output. It
// fails the test on anything tshark writes to stderr (a Lua error while
// loading a plugin is reported there, and tshark still exits 0) but the
// warning about running as root.
func tshark(t *testing.T, home string, args ...string) string {
	t.Helper()
	cmd := exec.Command("tshark", args...)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "LC_ALL=C.UTF-8")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var noise []string
	for _, line := range strings.Split(stderr.String(), "\n") {
		if line == "" || strings.HasPrefix(line, `Running as user "root"`) {
			continue
		}
		noise = append(noise, line)
	}
	if err != nil || len(noise) > 0 {
		t.Fatalf("tshark %s: %v\nstderr:\n%s", strings.Join(args, " "), err, strings.Join(noise, "\n"))
	}
	return stdout.String()
}

// decodeCheck holds pcap to what every socklab capture must satisfy: no
// Lua error, nothing malformed, and every frame carrying TCP or UDP
// payload on a socklab port decoded by a socklab dissector (a TCP segment
// whose bytes are reassembled in a later frame counts for that frame).
func decodeCheck(t *testing.T, home, pcap string) {
	t.Helper()
	bad := tshark(t, home, "-r", pcap, "-2", "-Y", "_ws.lua.error || _ws.malformed", "-T", "fields", "-e", "frame.number", "-e", "_ws.col.Info")
	if strings.TrimSpace(bad) != "" {
		t.Errorf("frames with a Lua error or malformed:\n%s", bad)
	}
	filter := "((tcp.len > 0 && !tcp.reassembled_in) || (udp && udp.length > 8)) && !(" + strings.Join(protocols, " || ") + ")"
	left := tshark(t, home, "-r", pcap, "-2", "-Y", filter, "-T", "fields", "-e", "frame.number", "-e", "_ws.col.Protocol", "-e", "_ws.col.Info")
	if strings.TrimSpace(left) != "" {
		t.Errorf("frames with payload not decoded as a socklab protocol:\n%s", left)
	}
}

// golden compares got with testdata/name.golden, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("tshark output differs from %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// decode runs the whole check on a capture: decodeCheck, then the frames
// that hold proto with the given fields, compared with the golden file.
func decode(t *testing.T, c *capture, name, proto string, fields ...string) string {
	t.Helper()
	home := pluginHome(t)
	pcap := c.write()
	decodeCheck(t, home, pcap)
	args := []string{"-r", pcap, "-2", "-Y", proto, "-T", "fields", "-E", "header=y", "-E", "occurrence=a", "-E", "aggregator=,",
		"-e", "frame.number", "-e", "_ws.col.Protocol", "-e", "_ws.col.Info"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	out := tshark(t, home, args...)
	golden(t, name, out)
	return out
}

func TestPortsFileUpToDate(t *testing.T) {
	want := PortsLua()
	if *update {
		if err := os.WriteFile(PortsFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(PortsFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date with services/kit/lab: run go generate ./... in deploy/wireshark\ngot:\n%s\nwant:\n%s", PortsFile, got, want)
	}
}

// TestPluginsLoad checks that tshark finds every protocol once the plugins
// are installed, with its port preferences, and that it loads them from
// the folder make wireshark installs into.
func TestPluginsLoad(t *testing.T) {
	home := pluginHome(t)
	protos := tshark(t, home, "-G", "protocols")
	for _, p := range protocols {
		if !containsField(protos, p) {
			t.Errorf("tshark -G protocols has no %q", p)
		}
	}
	prefs := tshark(t, home, "-G", "defaultprefs")
	for _, s := range lab.Servers() {
		for _, tr := range s.Transports {
			want := fmt.Sprintf("#%s.%s_port: %d\n", s.Name, tr, s.Port)
			if !strings.Contains(prefs, want) {
				t.Errorf("tshark -G defaultprefs lacks %q", want)
			}
		}
	}
	folders := tshark(t, home, "-G", "folders")
	if !strings.Contains(folders, filepath.Join(home, ".local", "lib", "wireshark", "plugins")) {
		t.Errorf("tshark -G folders does not name the plugin folder the test installed into:\n%s", folders)
	}
}

// containsField reports whether a tab-separated line of out has field f
// in its third column (tshark -G protocols: name, short name, filter).
func containsField(out, f string) bool {
	for _, line := range strings.Split(out, "\n") {
		cols := strings.Split(line, "\t")
		if len(cols) >= 3 && cols[2] == f {
			return true
		}
	}
	return false
}
