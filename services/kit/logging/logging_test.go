package logging_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/socklab/socklab/services/kit/logging"
)

func TestNew(t *testing.T) {
	tests := []struct {
		give    logging.Config
		wantErr bool
	}{
		{logging.Config{Level: "info", Format: "json"}, false},
		{logging.Config{Level: "DEBUG", Format: "console"}, false},
		{logging.Config{Level: "info", Format: "auto"}, false},
		{logging.Config{Level: "loud", Format: "json"}, true},
		{logging.Config{Level: "info", Format: "xml"}, true},
	}
	for _, tt := range tests {
		_, err := logging.New(tt.give, &bytes.Buffer{})
		if (err != nil) != tt.wantErr {
			t.Errorf("New(%+v) error = %v, want error %v", tt.give, err, tt.wantErr)
		}
	}
}

func TestAutoIsJSONOffTerminal(t *testing.T) {
	var buf bytes.Buffer
	log, err := logging.New(logging.Config{Level: "warn", Format: "auto"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown")
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil || m["msg"] != "shown" {
		t.Errorf("log output %q: want one JSON line with msg shown (err %v)", buf.String(), err)
	}
}
