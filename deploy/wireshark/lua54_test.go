package wireshark

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// TestLua54 loads the plugins under Lua 5.4, the Lua of Wireshark 4.4 and
// later (this machine's Wireshark 4.0 runs 5.2), with a stand-in for the
// Wireshark API, and checks the FILE_HEADER CRC and the JSON decoder there
// against Go.
func TestLua54(t *testing.T) {
	lua, err := exec.LookPath("lua5.4")
	if err != nil {
		t.Fatal("lua5.4 is not installed (make deps installs it):", err)
	}
	sizes := []int{1, 63, 64, 1000, 1 << 20, 10<<20 + 37}
	args := []string{"testdata/lua54.lua", "plugins"}
	for _, n := range sizes {
		args = append(args, fmt.Sprint(n))
	}
	out, err := exec.Command(lua, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("lua5.4 %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var want []string
	for _, n := range sizes {
		want = append(want, fmt.Sprintf("crc %d %08x", n, contentCRC(n)))
	}
	want = append(want, "json true Amélie 🎬 2001 2", `text Améli... \x00\xffx`)
	if got := strings.TrimSpace(string(out)); got != strings.Join(want, "\n") {
		t.Errorf("lua5.4 output:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}
