package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/socklab/socklab/services/kit/service"
	"github.com/socklab/socklab/services/loadgen/internal/plan"
	"github.com/socklab/socklab/services/loadgen/internal/scenario"
)

func listScenarios(args, environ []string, stdout io.Writer) error {
	if len(args) > 0 {
		return service.Usage(fmt.Errorf("scenarios takes no arguments, got %q", args))
	}
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	for _, s := range scenario.Specs {
		target := s.Target
		if v := env[plan.TargetEnv(s.Name)]; v != "" {
			target = v
		}
		proto := "tcp"
		if s.Datagram {
			proto = "udp"
		}
		fmt.Fprintf(stdout, "%-18s %s %-40s $%s\n    %s\n", s.Name, proto, target, plan.TargetEnv(s.Name), s.Help)
	}
	fmt.Fprintf(stdout, "%-18s a weighted mix of the above, set by -mix NAME=WEIGHT,...\n", scenario.Mix)
	return nil
}
