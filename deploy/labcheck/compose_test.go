package labcheck

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/socklab/socklab/services/kit/lab"
)

// root is the repository's top directory.
var root = filepath.Join("..", "..")

// loadCompose parses a compose file the way `docker compose` does, with
// every profile enabled and .env read from the file's directory.
func loadCompose(t *testing.T, file string, env ...string) *types.Project {
	t.Helper()
	return loadProject(t, file, cli.WithWorkingDirectory(root), cli.WithEnvFiles(), cli.WithDotEnv,
		cli.WithEnv(env), cli.WithProfiles([]string{"*"}))
}

// loadProject parses file with compose-go as project "socklab" with opts.
func loadProject(t *testing.T, file string, opts ...cli.ProjectOptionsFn) *types.Project {
	t.Helper()
	po, err := cli.NewProjectOptions([]string{file}, append(opts, cli.WithName("socklab"))...)
	if err != nil {
		t.Fatalf("compose options for %s: %v", file, err)
	}
	p, err := po.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load %s: %v", file, err)
	}
	return p
}

func TestComposeLoads(t *testing.T) {
	p := loadCompose(t, filepath.Join(root, "docker-compose.yml"))
	if len(p.Services) == 0 {
		t.Fatal("docker-compose.yml defines no services")
	}
}

// TestComposeHasLabServices: every service of the lab map is in
// docker-compose.yml under its name (each instance of a fleet), with the
// lab map's image.
func TestComposeHasLabServices(t *testing.T) {
	p := loadCompose(t, filepath.Join(root, "docker-compose.yml"))
	for _, s := range lab.Services() {
		for _, name := range s.Names() {
			svc, ok := p.Services[name]
			if !ok {
				t.Errorf("docker-compose.yml has no service %q (lab map: %s)", name, s.Name)
				continue
			}
			if svc.Image != s.Image() {
				t.Errorf("docker-compose.yml: %s image = %q, want %q", name, svc.Image, s.Image())
			}
		}
	}
}
