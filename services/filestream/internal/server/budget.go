package server

import (
	"errors"
	"sync/atomic"
)

// errBodyBudget ends a read whose body would take the bytes of all
// connections' bodies over BodyBudget.
var errBodyBudget = errors.New("body budget exhausted")

// budget is a count of bytes held against a fixed maximum, shared by every
// connection: per-connection limits multiply by the connections, a budget
// does not.
type budget struct {
	max  int64
	held atomic.Int64
}

// reserve takes n bytes, or reports false and takes nothing when that would
// exceed max.
func (b *budget) reserve(n int) bool {
	if b.held.Add(int64(n)) > b.max {
		b.held.Add(-int64(n))
		return false
	}
	return true
}

// release gives back n bytes.
func (b *budget) release(n int) {
	if n != 0 {
		b.held.Add(-int64(n))
	}
}
