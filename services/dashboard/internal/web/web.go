// Package web serves the dashboard: the page (embedded in the binary, no
// script or style fetched from anywhere), the state as JSON, the same state
// pushed as server-sent events after every scrape round, and the endpoint
// the impair tool PUTs the impairments in force to.
package web

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/socklab/socklab/services/dashboard/internal/state"
)

//go:embed static
var static embed.FS

// MaxImpairmentsBody bounds a PUT /api/impairments body.
const MaxImpairmentsBody = 64 << 10

// MaxClients bounds the event streams served at once.
const MaxClients = 64

// Server holds the handlers' dependencies.
type Server struct {
	Model *state.Model
	Hub   *Hub
	Log   *zap.Logger
	// Now is the clock (tests set it).
	Now func() time.Time
}

// Handler returns the dashboard's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	sub, _ := fs.Sub(static, "static")
	files := http.FileServerFS(sub)
	mux.Handle("GET /{$}", files)
	mux.Handle("GET /static/", http.StripPrefix("/static", files))
	mux.HandleFunc("GET /api/state", s.state)
	mux.HandleFunc("GET /api/events", s.events)
	mux.HandleFunc("PUT /api/impairments", s.putImpairments)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	return mux
}

func (s *Server) state(w http.ResponseWriter, _ *http.Request) {
	b, err := json.Marshal(s.Model.State())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(append(b, '\n'))
}

// events streams the state: once at once, then after every round.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ch, leave, ok := s.Hub.Join()
	if !ok {
		http.Error(w, "too many event streams", http.StatusServiceUnavailable)
		return
	}
	defer leave()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	first, err := json.Marshal(s.Model.State())
	if err != nil {
		return
	}
	// A stream idle for long is no stream: a write deadline per event
	// keeps a stalled reader from holding a goroutine forever.
	rc := http.NewResponseController(w)
	send := func(b []byte) bool {
		rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return false
		}
		fl.Flush()
		return true
	}
	if !send(first) {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case b, ok := <-ch:
			if !ok || !send(b) {
				return
			}
		}
	}
}

func (s *Server) putImpairments(w http.ResponseWriter, r *http.Request) {
	list, err := state.DecodeImpairments(http.MaxBytesReader(w, r.Body, MaxImpairmentsBody))
	if err != nil {
		status := http.StatusBadRequest
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			status = http.StatusRequestEntityTooLarge
		}
		http.Error(w, err.Error(), status)
		return
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	s.Model.SetImpairments(list, now().UTC())
	if s.Log != nil {
		s.Log.Info("impairments", zap.Int("count", len(list)))
	}
	w.WriteHeader(http.StatusNoContent)
}

// Hub hands each round's state to every event stream. A slow stream skips
// to the newest state rather than queueing old ones.
type Hub struct {
	mu     sync.Mutex
	subs   map[chan []byte]struct{}
	closed bool
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{subs: map[chan []byte]struct{}{}} }

// Join adds a stream; ok is false when MaxClients are served or the hub
// is closed. leave removes it.
func (h *Hub) Join() (ch <-chan []byte, leave func(), ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || len(h.subs) >= MaxClients {
		return nil, nil, false
	}
	c := make(chan []byte, 1)
	h.subs[c] = struct{}{}
	return c, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[c]; ok {
			delete(h.subs, c)
			close(c)
		}
	}, true
}

// Publish hands b to every stream.
func (h *Hub) Publish(b []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.subs {
		select {
		case c <- b:
		default:
			// Replace the state the stream has not taken yet.
			select {
			case <-c:
			default:
			}
			c <- b
		}
	}
}

// Clients counts the streams.
func (h *Hub) Clients() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Close ends every stream (on shutdown: an event stream never ends by
// itself) and refuses new ones.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for c := range h.subs {
		delete(h.subs, c)
		close(c)
	}
}
