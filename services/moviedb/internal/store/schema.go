package store

import (
	memdb "github.com/hashicorp/go-memdb"
)

// Table and index names of the movie database.
const (
	// TableMovies holds *Movie objects, never modified once inserted.
	TableMovies = "movies"
	// IndexID is the primary index of TableMovies: the title, lowercased,
	// so that lookups are case-insensitive and the index order is the
	// order of "all" pages.
	IndexID = "id"
)

// Schema returns the database schema: one table, TableMovies.
func Schema() *memdb.DBSchema {
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		TableMovies: moviesTableSchema(),
	}}
}

// moviesTableSchema describes TableMovies. Its only index is IndexID, unique
// and over strings.ToLower(Title): two titles that differ only in case are
// the same movie. Titles are never empty (check refuses them), as memdb
// requires of a primary index.
func moviesTableSchema() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: TableMovies,
		Indexes: map[string]*memdb.IndexSchema{
			IndexID: {
				Name:    IndexID,
				Unique:  true,
				Indexer: &memdb.StringFieldIndex{Field: "Title", Lowercase: true},
			},
		},
	}
}
