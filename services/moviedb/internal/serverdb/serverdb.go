// Package serverdb keeps the moviedb client's list of servers in a JSON
// file (the "serverdb"), edited by the client's addserver and deleteserver:
//
//	{"servers": ["127.0.0.1:5000", "moviedb-2:5000"]}
package serverdb

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// MaxServers bounds the list.
const MaxServers = 256

// DB is a server list and the file it lives in.
type DB struct {
	Path    string
	Servers []string
}

type file struct {
	Servers []string `json:"servers"`
}

// Load reads the list at path. A missing file is an empty list: the first
// addserver creates it.
func Load(path string) (*DB, error) {
	db := &DB{Path: path, Servers: []string{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return db, nil
	}
	if err != nil {
		return nil, err
	}
	var f file
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("server list %s: %w", path, err)
	}
	if len(f.Servers) > MaxServers {
		return nil, fmt.Errorf("server list %s: more than %d servers", path, MaxServers)
	}
	for _, s := range f.Servers {
		if err := CheckAddr(s); err != nil {
			return nil, fmt.Errorf("server list %s: %w", path, err)
		}
		if !slices.Contains(db.Servers, s) {
			db.Servers = append(db.Servers, s)
		}
	}
	return db, nil
}

// CheckAddr reports whether addr is a host:port a server can have.
func CheckAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("server %q: want host:port", addr)
	}
	if host == "" || strings.ContainsAny(host, " \t/") {
		return fmt.Errorf("server %q: bad host", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("server %q: port must be 1 to 65535", addr)
	}
	return nil
}

// ParseList parses a comma-separated list of host:port (MOVIEDB_SERVERS).
func ParseList(s string) ([]string, error) {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if err := CheckAddr(part); err != nil {
			return nil, err
		}
		if !slices.Contains(out, part) {
			out = append(out, part)
		}
	}
	if len(out) > MaxServers {
		return nil, fmt.Errorf("more than %d servers", MaxServers)
	}
	return out, nil
}

// Add appends addr to the list and saves the file.
func (db *DB) Add(addr string) error {
	if err := CheckAddr(addr); err != nil {
		return err
	}
	if slices.Contains(db.Servers, addr) {
		return fmt.Errorf("server %s is already in the list", addr)
	}
	if len(db.Servers) >= MaxServers {
		return fmt.Errorf("the list holds %d servers already", MaxServers)
	}
	return db.save(append(slices.Clone(db.Servers), addr))
}

// Delete removes addr from the list and saves the file.
func (db *DB) Delete(addr string) error {
	i := slices.Index(db.Servers, addr)
	if i < 0 {
		return fmt.Errorf("server %s is not in the list", addr)
	}
	return db.save(slices.Delete(slices.Clone(db.Servers), i, i+1))
}

// save writes servers to the file atomically (a temporary file renamed
// over it), then adopts them.
func (db *DB) save(servers []string) error {
	b, err := json.MarshalIndent(file{Servers: servers}, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(db.Path), filepath.Base(db.Path)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = tmp.Write(append(b, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), db.Path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save server list %s: %w", db.Path, err)
	}
	db.Servers = servers
	return nil
}
