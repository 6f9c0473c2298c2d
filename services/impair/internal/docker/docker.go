// Package docker finds the lab's containers and runs the impair image in a
// container's network namespace, through the docker CLI (the one client
// every machine with the lab already has).
package docker

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
)

// Container is one running container of the lab.
type Container struct {
	ID, Name, Service string
}

// Client runs the docker CLI.
type Client struct {
	// Docker is the docker command ("docker").
	Docker string
	// Image is the impair image, run in a target's network namespace.
	Image string
}

func (c Client) run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, c.Docker, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("docker %s: %s", args[0], msg)
	}
	return out.Bytes(), nil
}

// Containers lists the running containers of a compose project on its lab
// network (so never one in the host's namespace), of the given compose
// services (all when services is empty), sorted by service and name.
func (c Client) Containers(ctx context.Context, project, network string, services []string) ([]Container, error) {
	out, err := c.run(ctx, "ps", "--no-trunc",
		"--filter", "label=com.docker.compose.project="+project,
		"--filter", "network="+project+"_"+network,
		"--format", `{{.ID}} {{.Names}} {{.Label "com.docker.compose.service"}}`)
	if err != nil {
		return nil, err
	}
	var cs []Container
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		if len(services) > 0 && !slices.Contains(services, f[2]) {
			continue
		}
		cs = append(cs, Container{ID: f[0], Name: f[1], Service: f[2]})
	}
	slices.SortFunc(cs, func(a, b Container) int {
		if a.Service != b.Service {
			return strings.Compare(a.Service, b.Service)
		}
		return strings.Compare(a.Name, b.Name)
	})
	return cs, nil
}

// RunIn runs the impair image with args in the network namespace of the
// container id, with NET_ADMIN as its only capability (root in the image:
// a non-root user gets no ambient capabilities), and returns its output.
// The image's container is gone when it returns; what it changed lives in
// the target's namespace and goes with it.
func (c Client) RunIn(ctx context.Context, id string, args ...string) ([]byte, error) {
	return c.run(ctx, append([]string{"run", "--rm", "--network", "container:" + id,
		"--cap-drop", "ALL", "--cap-add", "NET_ADMIN", "--user", "0:0", "--read-only",
		"--security-opt", "no-new-privileges:true", "--log-driver", "none", c.Image}, args...)...)
}

// Running reports whether the container id still runs: one that stopped
// after Containers listed it (a load generator ending its round) has no
// namespace left to shape or ask.
func (c Client) Running(ctx context.Context, id string) bool {
	out, err := c.run(ctx, "inspect", "--format", "{{.State.Running}}", id)
	return err == nil && strings.TrimSpace(string(out)) == "true"
}
