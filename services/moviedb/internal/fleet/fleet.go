// Package fleet sends one moviedb request to every server of a list at
// once, each exchange with its own timeout, and collects every answer, so
// that a client can show each server's view, the servers that are down, and
// where their databases disagree.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/socklab/socklab/services/moviedb/proto"
)

// DefaultTimeout bounds one exchange with one server.
const DefaultTimeout = 2 * time.Second

// MaxPages bounds the pages All reads from one server (with the largest
// page size, a hundred million movies).
const MaxPages = 100_000

// Fleet is a list of servers.
type Fleet struct {
	// Servers are host:port addresses; answers come back in this order.
	Servers []string
	// Timeout bounds each exchange with each server; 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// Dialer connects; nil means a net.Dialer without TCP
	// keep-alive (see proto.Do).
	Dialer *net.Dialer
}

// Answer is one server's response to a request.
type Answer struct {
	Server string
	// Resp is the response; it may be an error response (Resp.OK false).
	Resp proto.Response
	// Err is set when there is no response: the server is down, slow or
	// broken. Resp is then empty.
	Err  error
	Took time.Duration
}

// Down reports whether the server gave no response.
func (a Answer) Down() bool { return a.Err != nil }

func (f *Fleet) timeout() time.Duration {
	if f.Timeout <= 0 {
		return DefaultTimeout
	}
	return f.Timeout
}

// do performs one exchange with one server under the fleet's timeout.
func (f *Fleet) do(ctx context.Context, server string, req proto.Request) (proto.Response, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, f.timeout(),
		fmt.Errorf("no answer within %v", f.timeout()))
	defer cancel()
	return proto.Do(ctx, f.Dialer, server, req)
}

// Ask sends req to every server at once and returns every answer, in the
// order of Servers, when the last one has answered or timed out.
func (f *Fleet) Ask(ctx context.Context, req proto.Request) []Answer {
	answers := make([]Answer, len(f.Servers))
	var wg sync.WaitGroup
	for i, s := range f.Servers {
		wg.Go(func() {
			start := time.Now()
			resp, err := f.do(ctx, s, req)
			answers[i] = Answer{Server: s, Resp: resp, Err: err, Took: time.Since(start)}
		})
	}
	wg.Wait()
	return answers
}

// Listing is one server's whole database, read page by page.
type Listing struct {
	Server string
	Movies []proto.Movie
	Pages  int
	// Err is set when a page could not be read; Movies then holds the pages
	// read before.
	Err error
}

// All reads every server's movies at once, each server page after page of
// pageSize (0 means proto.DefaultPageSize), and returns the listings in the
// order of Servers.
func (f *Fleet) All(ctx context.Context, pageSize int) []Listing {
	out := make([]Listing, len(f.Servers))
	var wg sync.WaitGroup
	for i, s := range f.Servers {
		wg.Go(func() { out[i] = f.list(ctx, s, pageSize) })
	}
	wg.Wait()
	return out
}

// ErrNoProgress is returned by All for a server whose pages do not
// advance.
var ErrNoProgress = errors.New("server returned the same cursor twice")

func (f *Fleet) list(ctx context.Context, server string, pageSize int) Listing {
	l := Listing{Server: server, Movies: []proto.Movie{}}
	cursor := ""
	for l.Pages < MaxPages {
		resp, err := f.do(ctx, server, proto.Request{Op: proto.OpAll, Cursor: cursor, Limit: pageSize})
		if err == nil && !resp.OK {
			err = resp.Error
		}
		if err != nil {
			l.Err = err
			return l
		}
		l.Pages++
		l.Movies = append(l.Movies, resp.Movies...)
		if resp.Next == "" {
			return l
		}
		if resp.Next == cursor {
			l.Err = ErrNoProgress
			return l
		}
		cursor = resp.Next
	}
	l.Err = fmt.Errorf("more than %d pages", MaxPages)
	return l
}
