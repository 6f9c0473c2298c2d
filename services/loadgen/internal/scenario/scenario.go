// Package scenario holds the load generator's scenarios, one per lab
// protocol: each makes workers that send requests with the service's own
// wire package (services/<svc>/proto) and check every answer, so that a
// wrong reply is an error counted by kind and not just bytes that came back.
package scenario

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/socklab/socklab/services/kit/lab"
	"github.com/socklab/socklab/services/loadgen/internal/engine"
)

// Options tune the scenarios. One set serves every scenario of a run; each
// reads the fields it needs.
type Options struct {
	// Target is the server's HOST:PORT, or a comma-separated list for a
	// scenario that spreads its requests over several servers (moviedb).
	Target string
	// Timeout bounds each request, from sending it to the last byte of
	// its answer; a UDP answer that does not come in time is lost.
	Timeout time.Duration
	// Size is the length of each message's payload (autoreply, tinytcp,
	// filestream-echo).
	Size int
	// FileSize is the size of each file asked for (filestream-file).
	FileSize int64
	// StreamCount, StreamInterval and StreamSize shape each stream asked
	// for (filestream-stream): packets, time between them, message size.
	StreamCount    int
	StreamInterval time.Duration
	StreamSize     int
	// Tag makes the names this generator creates (connection IDs, movie
	// titles) unlike those of any other generator running at once.
	Tag string
}

// Spec describes a scenario.
type Spec struct {
	Name string
	// Target is the default target: the service's name and port in the
	// lab, found by DNS.
	Target string
	// Datagram marks a UDP scenario, where a missing answer is loss.
	Datagram bool
	// Help says in one line what one request is.
	Help string
	// New builds the scenario; it reports bad options.
	New func(o Options) (engine.Scenario, error)
}

// Mix is the name of the weighted mix of other scenarios.
const Mix = "mix"

// Specs lists every scenario, in the order help shows them.
var Specs = []Spec{
	{Name: "autoreply-tcp", Target: lab.Autoreply.Target(), New: newAutoreplyTCP,
		Help: "one message line over a kept TCP connection; the REPLY must quote its length and snippet"},
	{Name: "autoreply-udp", Target: lab.Autoreply.Target(), Datagram: true, New: newAutoreplyUDP,
		Help: "one datagram; the REPLY datagram must quote its length and snippet"},
	{Name: "tinytcp", Target: lab.TinyTCP.Target(), New: newTinyTCP,
		Help: "ECHO <payload> (3 in 4) or TIME over a kept connection opened by WELCOME; the reply must answer it"},
	{Name: "filestream-echo", Target: lab.Filestream.Target(), New: newFilestreamEcho,
		Help: "ECHO of a payload over a kept TCP connection; the ECHO_REPLY must carry the same id and bytes"},
	{Name: "filestream-file", Target: lab.Filestream.Target(), New: newFilestreamFile,
		Help: "FILE of -file-size bytes over a kept TCP connection; size and CRC-32C of header and content must be right"},
	{Name: "filestream-stream", Target: lab.Filestream.Target(), Datagram: true, New: newFilestreamStream,
		Help: "STREAM of -stream-count packets over UDP (cookie exchange included); a missing packet or END is a loss"},
	{Name: "connid", Target: lab.ConnID.Target(), Datagram: true, New: newConnID,
		Help: "HELLO <a connection ID never used before> in a datagram; the answer must be OK with that ID"},
	{Name: "moviedb-get", Target: moviedbServers, New: newMovieDB(false),
		Help: "get of a title the server listed (learnt first with all), one connection per request, servers in turn"},
	{Name: "moviedb-mix", Target: moviedbServers, New: newMovieDB(true),
		Help: "in 20 requests: 14 get, 2 all (a page, in title order), 2 add (new titles), 2 edit (of those); answers checked"},
}

// moviedbServers is the lab's moviedb fleet.
var moviedbServers = strings.Join(lab.MovieDB.Targets(), ",")

// Lookup returns the scenario called name.
func Lookup(name string) (Spec, bool) {
	for _, s := range Specs {
		if s.Name == name {
			return s, true
		}
	}
	return Spec{}, false
}

// Names lists the scenario names, mix last.
func Names() []string {
	var out []string
	for _, s := range Specs {
		out = append(out, s.Name)
	}
	return append(out, Mix)
}

// Weighted is one entry of a mix.
type Weighted struct {
	Name   string
	Weight int
}

// ParseMix parses a mix: comma-separated NAME=WEIGHT entries (NAME alone
// weighs 1), for example "autoreply-tcp=3,tinytcp=1".
func ParseMix(s string) ([]Weighted, error) {
	var out []Weighted
	seen := map[string]bool{}
	total := 0
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, w, hasW := strings.Cut(entry, "=")
		name = strings.TrimSpace(name)
		weight := 1
		if hasW {
			n, err := strconv.Atoi(strings.TrimSpace(w))
			if err != nil || n < 1 || n > engine.MaxTotalWeight {
				return nil, fmt.Errorf("mix entry %q: weight must be a whole number from 1 to %d", entry, engine.MaxTotalWeight)
			}
			weight = n
		}
		if _, ok := Lookup(name); !ok {
			return nil, fmt.Errorf("mix entry %q: no scenario %q (have %s)", entry, name, strings.Join(Names()[:len(Specs)], ", "))
		}
		if seen[name] {
			return nil, fmt.Errorf("mix: %s given twice", name)
		}
		seen[name] = true
		total += weight
		if total > engine.MaxTotalWeight {
			return nil, fmt.Errorf("mix: weights add up to more than %d", engine.MaxTotalWeight)
		}
		out = append(out, Weighted{Name: name, Weight: weight})
	}
	if len(out) == 0 {
		return nil, errors.New("mix is empty; want NAME=WEIGHT,... such as autoreply-tcp=3,tinytcp=1")
	}
	return out, nil
}

// filler is what payloads are made of: printable, no space or quote, so a
// payload needs no escaping in any protocol.
const filler = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// appendPayload appends a message of size bytes that starts with seq (so
// that an answer to another message cannot pass for the answer to this one)
// and goes on with filler.
func appendPayload(dst []byte, seq uint64, size int) []byte {
	start := len(dst)
	dst = strconv.AppendUint(dst, seq, 36)
	dst = append(dst, '-')
	for len(dst)-start < size {
		dst = append(dst, filler[:min(len(filler), size-(len(dst)-start))]...)
	}
	return dst[:start+size]
}
