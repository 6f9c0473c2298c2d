package scrape

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/socklab/socklab/services/kit/lab"
)

func serve(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return strings.TrimPrefix(ts.URL, "http://")
}

func TestRound(t *testing.T) {
	good := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("# TYPE x_total counter\nx_total{a=\"1\"} 3\nx_total{a=\"2\"} 4\n"))
	})
	broken := serve(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", 500) })
	garbage := serve(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("x_total{ 3\n")) })
	huge := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("# a comment\n"), MaxBody/12+1))
	})
	// stalls until the scraper gives up.
	stall := serve(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	targets := []Target{{Node: "good", Addr: good}, {Node: "broken", Addr: broken}, {Node: "garbage", Addr: garbage},
		{Node: "huge", Addr: huge}, {Node: "stall", Addr: stall}}
	s := &Scraper{Timeout: 2 * time.Second}
	results, took := s.Round(t.Context(), targets)
	if len(results) != len(targets) {
		t.Fatalf("%d results for %d targets", len(results), len(targets))
	}
	wantErr := []string{"", "500", "parse", "larger than", "deadline"}
	for i, r := range results {
		if r.Node != targets[i].Node {
			t.Errorf("result %d is %s, want %s", i, r.Node, targets[i].Node)
		}
		switch {
		case wantErr[i] == "" && r.Err != nil:
			t.Errorf("%s: %v", r.Node, r.Err)
		case wantErr[i] != "" && (r.Err == nil || !strings.Contains(r.Err.Error(), wantErr[i])):
			t.Errorf("%s: error %v, want one about %q", r.Node, r.Err, wantErr[i])
		}
	}
	if f := results[0].Families["x_total"]; f == nil || len(f.GetMetric()) != 2 || f.GetMetric()[1].GetCounter().GetValue() != 4 {
		t.Errorf("parsed families = %v", results[0].Families)
	}
	// Parallel: the round waited for the stalled target once, not once
	// per target, and the round's time covers the slowest.
	if took < results[4].Took {
		t.Errorf("round took %v, less than its slowest target %v", took, results[4].Took)
	}
	if !errors.Is(results[4].Err, context.DeadlineExceeded) {
		t.Errorf("stalled target: %v, want a deadline error", results[4].Err)
	}
}

type fakeResolver struct {
	hosts map[string][]string
	ptrs  map[string][]string
	calls int
}

func (f *fakeResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	if a, ok := f.hosts[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (f *fakeResolver) LookupAddr(_ context.Context, addr string) ([]string, error) {
	f.calls++
	if p, ok := f.ptrs[addr]; ok {
		return p, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: addr, IsNotFound: true}
}

func TestDiscovery(t *testing.T) {
	res := &fakeResolver{
		hosts: map[string][]string{"loadgen": {"172.28.0.12", "172.28.0.11"}},
		ptrs:  map[string][]string{"172.28.0.11": {"socklab-loadgen-1.socklab_lab."}},
	}
	d := &Discovery{Services: lab.Services(), LoadgenHost: "loadgen", Port: lab.MetricsPort, Resolver: res}
	got := d.Targets(t.Context())
	var names []string
	for _, tg := range got {
		names = append(names, tg.Node+"="+tg.Addr)
	}
	want := "autoreply=autoreply:9100 tinytcp=tinytcp:9100 filestream=filestream:9100 connid=connid:9100 " +
		"moviedb-1=moviedb-1:9100 moviedb-2=moviedb-2:9100 moviedb-3=moviedb-3:9100 " +
		"socklab-loadgen-1=172.28.0.11:9100 loadgen@172.28.0.12=172.28.0.12:9100"
	if strings.Join(names, " ") != want {
		t.Errorf("targets:\n%s\nwant\n%s", strings.Join(names, " "), want)
	}
	// Names are asked once per address.
	d.Targets(t.Context())
	if res.calls != 2 {
		t.Errorf("%d reverse lookups for 2 addresses", res.calls)
	}
	// No replica: the name does not resolve, and that is no error.
	res.hosts = nil
	if got := d.Targets(t.Context()); len(got) != 7 {
		t.Errorf("%d targets without loadgen, want the 7 servers", len(got))
	}
}
