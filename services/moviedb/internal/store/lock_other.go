//go:build !unix

package store

import (
	"os"
	"path/filepath"
)

// lockDir only creates dir/LOCK where flock is missing: one server per data
// directory is then up to the operator.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o600)
}
