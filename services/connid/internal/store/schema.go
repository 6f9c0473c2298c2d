package store

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/hashicorp/go-memdb"
)

// Table and index names of the memdb schema.
const (
	// TableIDs holds one *Record per connection ID in use.
	TableIDs = "ids"
	// IndexID is the primary index, unique, on Record.ID.
	IndexID = "id"
	// IndexExpires orders records by Record.ExpiresAt, so the sweeper finds
	// the next ID to expire, and every expired one, by walking it from the
	// start.
	IndexExpires = "expires"
)

// Record is one connection ID in use. Records in the database are never
// modified: a claim of an expired ID inserts a new Record.
type Record struct {
	// ID is the connection ID.
	ID string
	// Client is the address of the client that claimed it.
	Client netip.AddrPort
	// ClaimedAt and ExpiresAt are Unix times in nanoseconds: int64 rather
	// than time.Time keeps a Record at 64 bytes plus the ID, and is what
	// the expiry index orders by.
	ClaimedAt int64
	ExpiresAt int64
}

// Claimed returns when the ID was claimed.
func (r *Record) Claimed() time.Time { return time.Unix(0, r.ClaimedAt) }

// Expires returns when the ID becomes free again.
func (r *Record) Expires() time.Time { return time.Unix(0, r.ExpiresAt) }

// Schema returns the memdb schema of the store: the single table TableIDs
// of *Record, indexed uniquely by ID (IndexID) and, not uniquely, by expiry
// time (IndexExpires; IDs claimed in the same nanosecond expire together,
// and memdb appends the ID to keep the entries apart).
//
// The indexers are typed rather than memdb's reflective field indexers: a
// claim is on the request path, and reflection cost allocations there. The
// expiry key is written in hexadecimal rather than as 8 raw bytes because
// memdb's radix tree copies every node on the path of an insert, edges and
// all: raw bytes give nodes of up to 256 edges (4 KiB to copy), hex digits at
// most 16.
func Schema() *memdb.DBSchema {
	return &memdb.DBSchema{
		Tables: map[string]*memdb.TableSchema{
			TableIDs: {
				Name: TableIDs,
				Indexes: map[string]*memdb.IndexSchema{
					IndexID: {
						Name:    IndexID,
						Unique:  true,
						Indexer: idIndexer{},
					},
					IndexExpires: {
						Name:    IndexExpires,
						Indexer: expiresIndexer{},
					},
				},
			},
		},
	}
}

// idIndexer indexes Record.ID. Its keys end in a 0 byte, as memdb's string
// indexers' do, so that no key is a prefix of another.
type idIndexer struct{}

func (idIndexer) FromObject(obj any) (bool, []byte, error) {
	r, ok := obj.(*Record)
	if !ok {
		return false, nil, fmt.Errorf("%s index: %T is not a *Record", IndexID, obj)
	}
	return true, idKey(r.ID), nil
}

func (idIndexer) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("%s index: %d arguments, want 1", IndexID, len(args))
	}
	id, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("%s index: argument %T is not a string", IndexID, args[0])
	}
	return idKey(id), nil
}

func idKey(id string) []byte {
	// Room for the primary key memdb appends in the non-unique index.
	k := make([]byte, 0, len(id)+1)
	return append(append(k, id...), 0)
}

// expiresIndexer indexes Record.ExpiresAt as 16 hexadecimal digits of the
// time with its sign bit flipped, so that byte order is time order.
type expiresIndexer struct{}

func (expiresIndexer) FromObject(obj any) (bool, []byte, error) {
	r, ok := obj.(*Record)
	if !ok {
		return false, nil, fmt.Errorf("%s index: %T is not a *Record", IndexExpires, obj)
	}
	// Capacity for the ID memdb appends to make the key unique.
	return true, expiresKey(r.ExpiresAt, len(r.ID)+1), nil
}

func (expiresIndexer) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("%s index: %d arguments, want 1", IndexExpires, len(args))
	}
	at, ok := args[0].(int64)
	if !ok {
		return nil, fmt.Errorf("%s index: argument %T is not an int64", IndexExpires, args[0])
	}
	return expiresKey(at, 0), nil
}

const hexDigits = "0123456789abcdef"

func expiresKey(at int64, room int) []byte {
	u := uint64(at) ^ (1 << 63)
	k := make([]byte, 16, 16+room)
	for i := 15; i >= 0; i-- {
		k[i] = hexDigits[u&0xf]
		u >>= 4
	}
	return k
}
