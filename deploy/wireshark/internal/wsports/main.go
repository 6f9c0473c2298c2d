// Command wsports writes the Wireshark dissectors' port table,
// deploy/wireshark/plugins/socklab_ports.lua, from the lab map
// (services/kit/lab). Run it from deploy/wireshark (go generate does);
// TestPortsFileUpToDate fails while the file is out of date.
package main

import (
	"fmt"
	"os"

	"github.com/socklab/socklab/deploy/wireshark"
)

func main() {
	if err := os.WriteFile(wireshark.PortsFile, wireshark.PortsLua(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "wsports:", err)
		os.Exit(1)
	}
}
