// Package report is the list of impairments in force as the dashboard and
// `impair list -json` show it, and its delivery to the dashboard.
package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/socklab/socklab/services/impair/internal/shape"
	"github.com/socklab/socklab/services/kit/lab"
)

// Entry is one container's impairment, as the lab map defines it for the
// dashboard.
type Entry = lab.Impairment

// NewEntry describes st on a container of service.
func NewEntry(service, container string, st shape.State) Entry {
	e := Entry{Service: service, Container: container, LossPercent: st.LossPercent, Since: st.Since.UTC().Format(time.RFC3339)}
	if st.Rate > 0 {
		e.Rate = shape.FormatRate(st.Rate)
	}
	if st.Delay > 0 {
		e.Delay = st.Delay.String()
	}
	if st.Jitter > 0 {
		e.Jitter = st.Jitter.String()
	}
	return e
}

// WriteJSON writes entries as a JSON array ([] when empty).
func WriteJSON(w io.Writer, entries []Entry) error {
	if entries == nil {
		entries = []Entry{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(entries)
}

// WriteTable writes entries as a table for people.
func WriteTable(w io.Writer, entries []Entry) error {
	if len(entries) == 0 {
		_, err := fmt.Fprintln(w, "no impairment in force")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tCONTAINER\tLOSS\tRATE\tDELAY\tJITTER\tSINCE")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%g%%\t%s\t%s\t%s\t%s\n", e.Service, e.Container, e.LossPercent, dash(e.Rate), dash(e.Delay), dash(e.Jitter), e.Since)
	}
	return tw.Flush()
}

// Push sends the whole list to the dashboard: PUT base/api/impairments with
// the JSON array, within timeout. The dashboard is optional; the caller
// decides what a failure means.
func Push(ctx context.Context, client *http.Client, base string, entries []Entry, timeout time.Duration) error {
	var body bytes.Buffer
	if err := WriteJSON(&body, entries); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, strings.TrimSuffix(base, "/")+"/api/impairments", &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("dashboard: %s", resp.Status)
	}
	return nil
}
