package serverdb

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestAddDeleteSave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "servers.json")
	db, err := Load(path)
	if err != nil || len(db.Servers) != 0 {
		t.Fatalf("Load of a missing file = %+v, %v; want an empty list", db, err)
	}
	for _, a := range []string{"127.0.0.1:5000", "moviedb-2:5000", "[::1]:5001"} {
		if err := db.Add(a); err != nil {
			t.Fatalf("Add(%s): %v", a, err)
		}
	}
	if err := db.Add("127.0.0.1:5000"); err == nil || !strings.Contains(err.Error(), "already") {
		t.Errorf("Add of a listed server: %v", err)
	}
	if err := db.Delete("moviedb-2:5000"); err != nil {
		t.Fatal(err)
	}
	if err := db.Delete("moviedb-2:5000"); err == nil || !strings.Contains(err.Error(), "not in the list") {
		t.Errorf("Delete of an unlisted server: %v", err)
	}
	b, _ := os.ReadFile(path)
	want := "{\n  \"servers\": [\n    \"127.0.0.1:5000\",\n    \"[::1]:5001\"\n  ]\n}\n"
	if string(b) != want {
		t.Errorf("file = %q, want %q", b, want)
	}
	again, err := Load(path)
	if err != nil || !reflect.DeepEqual(again.Servers, []string{"127.0.0.1:5000", "[::1]:5001"}) {
		t.Errorf("reload = %v, %v", again.Servers, err)
	}
	if m, _ := filepath.Glob(path + ".*.tmp"); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

func TestCheckAddr(t *testing.T) {
	tests := []struct {
		give string
		ok   bool
	}{
		{"127.0.0.1:5000", true},
		{"moviedb:1", true},
		{"[::1]:65535", true},
		{"127.0.0.1", false},
		{":5000", false},
		{"host:0", false},
		{"host:70000", false},
		{"host:http", false},
		{"a b:5000", false},
	}
	for _, tt := range tests {
		if err := CheckAddr(tt.give); (err == nil) != tt.ok {
			t.Errorf("CheckAddr(%q) = %v, want ok %v", tt.give, err, tt.ok)
		}
	}
}

func TestParseList(t *testing.T) {
	got, err := ParseList(" a:1, b:2,,a:1 ")
	if err != nil || !reflect.DeepEqual(got, []string{"a:1", "b:2"}) {
		t.Errorf("ParseList = %v, %v", got, err)
	}
	if _, err := ParseList("a:1,nope"); err == nil {
		t.Error("ParseList accepted a bad address")
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	for i, give := range []string{`nonsense`, `{"servers":["nope"]}`, `{"servers":"a:1"}`} {
		path := filepath.Join(dir, "s.json")
		os.WriteFile(path, []byte(give), 0o600)
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%d: Load(%s) = %v, want an error naming the file", i, give, err)
		}
	}
}
