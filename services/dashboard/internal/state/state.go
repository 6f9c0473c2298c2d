// Package state is the dashboard's picture of the lab: the map (from
// kit/lab), and per node what its /metrics pages said over the last
// minutes, turned into rates and latency percentiles; the load generators'
// figures by scenario and merged; the capture's status file; the
// impairments in force. Ingest feeds it one scrape round at a time; State
// returns what the page and /api/state show.
package state

import (
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/socklab/socklab/services/dashboard/internal/scrape"
	"github.com/socklab/socklab/services/kit/lab"
)

// State is what the dashboard shows, as JSON.
type State struct {
	Time        time.Time   `json:"time"`
	Scrape      ScrapeStats `json:"scrape"`
	Nodes       []Node      `json:"nodes"`
	Load        Load        `json:"load"`
	Capture     Capture     `json:"capture"`
	Impairments Impairments `json:"impairments"`
}

// ScrapeStats says how the scrape rounds go.
type ScrapeStats struct {
	IntervalMs float64 `json:"interval_ms"`
	Rounds     int64   `json:"rounds"`
	Targets    int     `json:"targets"`
	Failed     int     `json:"failed"`
	// LastMs is the last round's wall time (every target in parallel);
	// MeanMs and MaxMs cover the rounds of the last minute.
	LastMs float64 `json:"last_ms"`
	MeanMs float64 `json:"mean_ms"`
	MaxMs  float64 `json:"max_ms"`
}

// Port is one port a node serves.
type Port struct {
	Port      int    `json:"port"`
	Transport string `json:"transport"`
	// HostPort is the port published on 127.0.0.1 (0: none).
	HostPort int `json:"host_port,omitempty"`
}

// Node kinds.
const (
	KindServer    = "server"
	KindLoadgen   = "loadgen"
	KindCapture   = "capture"
	KindDashboard = "dashboard"
)

// Node is one box of the lab's map: a server instance, a loadgen replica,
// the capture, the dashboard.
type Node struct {
	Name    string `json:"name"`
	Service string `json:"service"`
	Kind    string `json:"kind"`
	Summary string `json:"summary"`
	Ports   []Port `json:"ports"`
	// Up says the node answered its last scrape (capture: is recording).
	Up    bool   `json:"up"`
	Error string `json:"error,omitempty"`
	// Live are the figures now (over the rate window); History the last
	// minutes of them, one point per scrape.
	Live    Figures  `json:"live"`
	History *History `json:"history,omitempty"`
	// Impairment describes an impairment in force on this node ("" none).
	Impairment string `json:"impairment,omitempty"`
}

// Figures are a node's live numbers; nil where unknown (no such metric, or
// no two scrapes yet).
type Figures struct {
	Rate      *float64 `json:"rate"`       // requests/s
	ErrorRate *float64 `json:"error_rate"` // failed requests/s
	P50       *float64 `json:"p50_ms"`
	P99       *float64 `json:"p99_ms"`
	Conns     *float64 `json:"conns"` // open connections
}

// History holds a node's figures over time, one entry per scrape.
type History struct {
	T         []int64    `json:"t"` // Unix milliseconds
	Rate      []*float64 `json:"rate"`
	ErrorRate []*float64 `json:"error_rate"`
	P50       []*float64 `json:"p50_ms"`
	P99       []*float64 `json:"p99_ms"`
	Conns     []*float64 `json:"conns"`
}

// Load is what the load generators do.
type Load struct {
	Generators []Generator `json:"generators"`
	// Merged adds the generators up: rates, counts, and their latency
	// histograms merged (not percentiles averaged).
	Merged Generator `json:"merged"`
}

// Generator is one loadgen replica, or the merge of all.
type Generator struct {
	Name  string `json:"name"`
	Addr  string `json:"addr,omitempty"`
	Up    bool   `json:"up"`
	Error string `json:"error,omitempty"`
	// TargetRate is the rate asked for (open loop); Live.Rate what it
	// achieves.
	TargetRate *float64         `json:"target_rate"`
	Live       Figures          `json:"live"`
	Scenarios  []ScenarioFigure `json:"scenarios"`
}

// ScenarioFigure is one scenario of a generator (or of all).
type ScenarioFigure struct {
	Name      string   `json:"name"`
	Rate      *float64 `json:"rate"`
	ErrorRate *float64 `json:"error_rate"`
	P50       *float64 `json:"p50_ms"`
	P99       *float64 `json:"p99_ms"`
	// Requests, Successes and Errors count since the generator's round
	// began.
	Requests  float64            `json:"requests"`
	Successes float64            `json:"successes"`
	Errors    map[string]float64 `json:"errors,omitempty"`
}

// Round is one scrape round's outcome.
type Round struct {
	At      time.Time
	Took    time.Duration
	Results []scrape.Result
	// Capture is the capture's status file (nil: none); CaptureErr why it
	// could not be read.
	Capture    *CaptureStatus
	CaptureErr error
}

// Model accumulates rounds. It is safe for concurrent use.
type Model struct {
	// Window is the span rates and percentiles are measured over;
	// Keep how long a history goes back.
	Window, Keep time.Duration
	// Interval is the scrape interval, shown on the page.
	Interval time.Duration

	mu       sync.Mutex
	services []lab.Service
	nodes    map[string]*node
	present  []scrape.Target // of the last round
	rounds   []roundTime     // of the last minute
	count    int64
	failed   int
	last     time.Time
	capture  captureState
	impair   Impairments
}

type roundTime struct {
	at   time.Time
	took time.Duration
}

// New returns a model of a lab made of services.
func New(services []lab.Service) *Model {
	return &Model{
		Window: 5 * time.Second, Keep: 3 * time.Minute, Interval: time.Second,
		services: services, nodes: map[string]*node{},
	}
}

type node struct {
	target  scrape.Target
	samples []sample // the rate window's
	hist    History
	err     string
	up      bool
}

type sample struct {
	at               time.Time
	requests, errors float64
	hasReq, hasErr   bool
	lat              hist
	hasLat           bool
	conns            float64
	hasConns         bool
	// loadgen
	target    float64
	hasTarget bool
	scen      map[string]*scenSample
}

type scenSample struct {
	requests, successes float64
	errors              map[string]float64
	lat                 hist
}

// Ingest adds a round.
func (m *Model) Ingest(r Round) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.count++
	m.last = r.At
	m.rounds = append(m.rounds, roundTime{r.At, r.Took})
	for len(m.rounds) > 0 && r.At.Sub(m.rounds[0].at) > time.Minute {
		m.rounds = m.rounds[1:]
	}
	m.failed = 0
	m.present = m.present[:0]
	seen := map[string]bool{}
	for _, res := range r.Results {
		m.present = append(m.present, res.Target)
		seen[res.Node] = true
		n := m.nodes[res.Node]
		if n == nil {
			n = &node{}
			m.nodes[res.Node] = n
		}
		n.target = res.Target
		if res.Err != nil {
			m.failed++
			n.up, n.err = false, res.Err.Error()
			n.samples = nil // a gap: rates restart after it
			n.push(r.At, Figures{}, m.Keep)
			continue
		}
		n.up, n.err = true, ""
		s := extract(res.Service, res.Families)
		s.at = r.At
		n.samples = append(n.samples, s)
		for len(n.samples) > 1 && r.At.Sub(n.samples[0].at) > m.Window {
			n.samples = n.samples[1:]
		}
		n.push(r.At, n.figures(), m.Keep)
	}
	// Replicas scaled away leave the map.
	for name := range m.nodes {
		if !seen[name] {
			delete(m.nodes, name)
		}
	}
	m.capture.update(r.Capture, r.CaptureErr, r.At)
}

// extract reads what the dashboard needs from one /metrics page.
func extract(service string, fams map[string]*dto.MetricFamily) sample {
	var s sample
	f := ServiceFamilies[service]
	s.requests, s.hasReq = sum(fams, f.Requests)
	s.errors, s.hasErr = sum(fams, f.Errors)
	s.lat, s.hasLat = histogramOf(fams, f.Latency)
	s.conns, s.hasConns = sum(fams, f.Conns)
	if service != lab.Loadgen.Name {
		return s
	}
	s.target, s.hasTarget = sum(fams, []string{loadgenTarget})
	s.scen = map[string]*scenSample{}
	get := func(name string) *scenSample {
		sc := s.scen[name]
		if sc == nil {
			sc = &scenSample{errors: map[string]float64{}}
			s.scen[name] = sc
		}
		return sc
	}
	for _, m := range fams[loadgenRequests].GetMetric() {
		get(label(m, "scenario")).requests += value(m)
	}
	for _, m := range fams[loadgenSuccesses].GetMetric() {
		get(label(m, "scenario")).successes += value(m)
	}
	for _, m := range fams[loadgenErrors].GetMetric() {
		get(label(m, "scenario")).errors[label(m, "kind")] += value(m)
	}
	for _, m := range fams[loadgenLatency].GetMetric() {
		if m.GetHistogram() != nil {
			get(label(m, "scenario")).lat.addMetric(m.GetHistogram())
		}
	}
	return s
}

// delta is a counter's increase; a reset (a restarted process) counts
// from zero.
func delta(cur, old float64) float64 {
	if cur < old {
		return cur
	}
	return cur - old
}

func ptr(v float64) *float64 {
	// Three significant figures are plenty on a page and keep the JSON
	// small.
	if v != 0 && !math.IsInf(v, 0) && !math.IsNaN(v) {
		mag := math.Pow(10, 2-math.Floor(math.Log10(math.Abs(v))))
		v = math.Round(v*mag) / mag
	}
	return &v
}

// window returns the oldest and newest samples, and the seconds between.
func (n *node) window() (base, cur *sample, dt float64) {
	if len(n.samples) < 2 {
		return nil, nil, 0
	}
	base, cur = &n.samples[0], &n.samples[len(n.samples)-1]
	return base, cur, cur.at.Sub(base.at).Seconds()
}

func (n *node) figures() Figures {
	var f Figures
	if len(n.samples) > 0 {
		if c := n.samples[len(n.samples)-1]; c.hasConns {
			f.Conns = ptr(c.conns)
		}
	}
	base, cur, dt := n.window()
	if dt <= 0 {
		return f
	}
	if cur.hasReq {
		f.Rate = ptr(delta(cur.requests, base.requests) / dt)
	}
	if cur.hasErr || cur.hasReq {
		f.ErrorRate = ptr(delta(cur.errors, base.errors) / dt)
	}
	if cur.hasLat {
		f.P50, f.P99 = quantiles(cur.lat.since(base.lat))
	}
	return f
}

func quantiles(h hist) (p50, p99 *float64) {
	if v, ok := h.quantile(0.5); ok {
		p50 = ptr(v * 1e3)
	}
	if v, ok := h.quantile(0.99); ok {
		p99 = ptr(v * 1e3)
	}
	return p50, p99
}

func (n *node) push(at time.Time, f Figures, keep time.Duration) {
	h := &n.hist
	h.T = append(h.T, at.UnixMilli())
	h.Rate = append(h.Rate, f.Rate)
	h.ErrorRate = append(h.ErrorRate, f.ErrorRate)
	h.P50 = append(h.P50, f.P50)
	h.P99 = append(h.P99, f.P99)
	h.Conns = append(h.Conns, f.Conns)
	cut := 0
	for cut < len(h.T) && at.UnixMilli()-h.T[cut] > keep.Milliseconds() {
		cut++
	}
	if cut > 0 {
		h.T, h.Rate, h.ErrorRate = h.T[cut:], h.Rate[cut:], h.ErrorRate[cut:]
		h.P50, h.P99, h.Conns = h.P50[cut:], h.P99[cut:], h.Conns[cut:]
	}
}

func (h *History) clone() *History {
	return &History{T: slices.Clone(h.T), Rate: slices.Clone(h.Rate), ErrorRate: slices.Clone(h.ErrorRate),
		P50: slices.Clone(h.P50), P99: slices.Clone(h.P99), Conns: slices.Clone(h.Conns)}
}

// State returns the picture now.
func (m *Model) State() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := State{Time: m.last, Impairments: m.impair.clone()}
	st.Scrape = m.scrapeStats()
	for _, svc := range m.services {
		switch {
		case svc.Name == lab.Loadgen.Name:
			st.Nodes = append(st.Nodes, m.loadgenNodes(svc)...)
		case svc.Name == lab.Capture.Name:
			st.Nodes = append(st.Nodes, m.capture.node(svc))
		default:
			for i, name := range svc.Names() {
				st.Nodes = append(st.Nodes, m.serverNode(svc, i, name))
			}
		}
	}
	st.Load = m.load()
	st.Capture = m.capture.view()
	for i := range st.Nodes {
		st.Nodes[i].Impairment = st.Impairments.on(st.Nodes[i].Service, st.Nodes[i].Name)
	}
	return st
}

func (m *Model) scrapeStats() ScrapeStats {
	s := ScrapeStats{IntervalMs: float64(m.Interval.Milliseconds()), Rounds: m.count, Targets: len(m.present), Failed: m.failed}
	if len(m.rounds) == 0 {
		return s
	}
	var total time.Duration
	for _, r := range m.rounds {
		total += r.took
		s.MaxMs = max(s.MaxMs, ms(r.took))
	}
	s.LastMs = ms(m.rounds[len(m.rounds)-1].took)
	s.MeanMs = ms(total / time.Duration(len(m.rounds)))
	return s
}

func ms(d time.Duration) float64 { return math.Round(float64(d.Microseconds())/10) / 100 }

func kindOf(svc lab.Service) string {
	switch {
	case svc.Name == lab.Loadgen.Name:
		return KindLoadgen
	case svc.Name == lab.Capture.Name:
		return KindCapture
	case svc.Server:
		return KindServer
	}
	return svc.Name
}

func ports(svc lab.Service, instance int) []Port {
	var out []Port
	if svc.Port == 0 {
		return out
	}
	host := 0
	if instance < len(svc.HostPorts) {
		host = svc.HostPorts[instance]
	}
	for _, t := range svc.Transports {
		out = append(out, Port{Port: svc.Port, Transport: string(t), HostPort: host})
	}
	return out
}

func (m *Model) serverNode(svc lab.Service, i int, name string) Node {
	nd := Node{Name: name, Service: svc.Name, Kind: kindOf(svc), Summary: svc.Summary, Ports: ports(svc, i)}
	if !svc.Metrics || svc.Name == lab.Dashboard.Name {
		nd.Up = svc.Name == lab.Dashboard.Name // it is serving this
		return nd
	}
	n := m.nodes[name]
	if n == nil {
		nd.Error = "not scraped yet"
		return nd
	}
	nd.Up, nd.Error = n.up, n.err
	nd.History = n.hist.clone()
	if n.up {
		nd.Live = n.figures()
	}
	return nd
}

// loadgenNodes lists the replicas found, or one placeholder when none runs.
func (m *Model) loadgenNodes(svc lab.Service) []Node {
	var out []Node
	for _, t := range m.present {
		if t.Service != svc.Name {
			continue
		}
		n := m.nodes[t.Node]
		nd := Node{Name: t.Node, Service: svc.Name, Kind: KindLoadgen, Summary: svc.Summary,
			Up: n.up, Error: n.err, History: n.hist.clone()}
		if n.up {
			nd.Live = n.figures()
		}
		out = append(out, nd)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if len(out) == 0 {
		out = append(out, Node{Name: svc.Name, Service: svc.Name, Kind: KindLoadgen, Summary: svc.Summary,
			Error: "no replica running (make load N=3)"})
	}
	return out
}

func (m *Model) load() Load {
	var l Load
	merged := map[string]*mergedScenario{}
	var order []string
	var mergedTarget float64
	var anyTarget bool
	var mergedLat hist
	var mergedRate, mergedErr float64
	var anyRate bool
	for _, t := range m.present {
		if t.Service != lab.Loadgen.Name {
			continue
		}
		n := m.nodes[t.Node]
		g := Generator{Name: t.Node, Addr: t.Addr, Up: n.up, Error: n.err}
		base, cur, dt := n.window()
		if n.up && len(n.samples) > 0 {
			last := n.samples[len(n.samples)-1]
			if last.hasTarget {
				g.TargetRate = ptr(last.target)
				mergedTarget += last.target
				anyTarget = true
			}
			g.Live = n.figures()
			for _, name := range sortedKeys(last.scen) {
				sc := last.scen[name]
				f := ScenarioFigure{Name: name, Requests: sc.requests, Successes: sc.successes, Errors: nonZero(sc.errors)}
				ms := merged[name]
				if ms == nil {
					ms = &mergedScenario{errors: map[string]float64{}}
					merged[name] = ms
					order = append(order, name)
				}
				ms.requests += sc.requests
				ms.successes += sc.successes
				for k, v := range sc.errors {
					ms.errors[k] += v
				}
				if dt > 0 {
					old := base.scen[name]
					if old == nil {
						old = &scenSample{}
					}
					rate := delta(sc.requests, old.requests) / dt
					errs := delta(sc.requests-sc.successes, old.requests-old.successes) / dt
					lat := sc.lat.since(old.lat)
					f.Rate, f.ErrorRate = ptr(rate), ptr(errs)
					f.P50, f.P99 = quantiles(lat)
					ms.rate += rate
					ms.errRate += errs
					ms.lat.add(lat)
					ms.timed = true
				}
				g.Scenarios = append(g.Scenarios, f)
			}
			if dt > 0 {
				mergedRate += delta(cur.requests, base.requests) / dt
				mergedErr += delta(cur.errors, base.errors) / dt
				mergedLat.add(cur.lat.since(base.lat))
				anyRate = true
			}
		}
		l.Generators = append(l.Generators, g)
	}
	sort.Slice(l.Generators, func(i, j int) bool { return l.Generators[i].Name < l.Generators[j].Name })
	l.Merged = Generator{Name: "merged", Up: len(l.Generators) > 0}
	if anyTarget {
		l.Merged.TargetRate = ptr(mergedTarget)
	}
	if anyRate {
		l.Merged.Live.Rate, l.Merged.Live.ErrorRate = ptr(mergedRate), ptr(mergedErr)
		l.Merged.Live.P50, l.Merged.Live.P99 = quantiles(mergedLat)
	}
	sort.Strings(order)
	for _, name := range order {
		ms := merged[name]
		f := ScenarioFigure{Name: name, Requests: ms.requests, Successes: ms.successes, Errors: nonZero(ms.errors)}
		if ms.timed {
			f.Rate, f.ErrorRate = ptr(ms.rate), ptr(ms.errRate)
			f.P50, f.P99 = quantiles(ms.lat)
		}
		l.Merged.Scenarios = append(l.Merged.Scenarios, f)
	}
	return l
}

type mergedScenario struct {
	requests, successes float64
	errors              map[string]float64
	rate, errRate       float64
	lat                 hist
	timed               bool
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func nonZero(m map[string]float64) map[string]float64 {
	var out map[string]float64
	for k, v := range m {
		if v != 0 {
			if out == nil {
				out = map[string]float64{}
			}
			out[k] = v
		}
	}
	return out
}

// SetImpairments replaces the impairments in force.
func (m *Model) SetImpairments(list []Impairment, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.impair = Impairments{Updated: &at, List: slices.Clone(list)}
}

// on describes the impairments on a node ("" none).
func (im Impairments) on(service, name string) string {
	var parts []string
	for _, i := range im.List {
		if i.Service == name || i.Service == service || i.Container == name ||
			(i.Container != "" && strings.Contains(i.Container, "-"+name+"-")) {
			parts = append(parts, describe(i))
		}
	}
	return strings.Join(parts, "; ")
}
