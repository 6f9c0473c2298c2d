// Command imagebin builds the static binaries of every socklab service into
// the layout deploy/Dockerfile copies into images: OUT/<service>/app is the
// service's main program (cmd/<service>-server, or cmd/<service> when there
// is no server) and its other commands sit beside it under their own names.
// It is the one build recipe behind both `make images` on the host and the
// in-Docker build from source, which has no shell to run a script.
//
// Run it from the workspace root: go run ./services/kit/cmd/imagebin -o DIR.
// It reads no environment variables beyond the go command's own.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "imagebin:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("imagebin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "bin/image", "output directory")
	only := fs.String("only", "", "comma-separated services to build (default: all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// An empty directory the Dockerfile copies, owned by the image's user,
	// where a service writes into a volume (scratch has no mkdir).
	if err := os.MkdirAll(filepath.Join(*out, ".empty"), 0o755); err != nil {
		return err
	}
	dirs, err := moduleDirs(ctx)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		if s != "" {
			want[s] = true
		}
	}
	for _, dir := range dirs {
		svc := filepath.Base(dir)
		mainName := ""
		for _, name := range []string{svc + "-server", svc} {
			if st, err := os.Stat(filepath.Join(dir, "cmd", name)); err == nil && st.IsDir() {
				mainName = name
				break
			}
		}
		// A module without a main program (kit) makes no image.
		if mainName == "" || (len(want) > 0 && !want[svc]) {
			continue
		}
		dest, err := filepath.Abs(filepath.Join(*out, svc))
		if err != nil {
			return err
		}
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "imagebin: %s -> %s\n", svc, dest)
		build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", dest+"/", "./cmd/...")
		build.Dir = dir
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		build.Stdout, build.Stderr = stdout, stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build %s: %w", svc, err)
		}
		if err := os.Rename(filepath.Join(dest, mainName), filepath.Join(dest, "app")); err != nil {
			return err
		}
	}
	return nil
}

// moduleDirs lists the workspace's modules.
func moduleDirs(ctx context.Context) ([]string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go list -m: %v: %s", err, errb.String())
	}
	return strings.Fields(out.String()), nil
}
