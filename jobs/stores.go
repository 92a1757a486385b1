package jobs

import (
	"errors"
)

// BoltStore is the embedded Store: one bbolt file, no other process.
type BoltStore struct{}

// OpenBolt opens (creating it if needed) the job store at path, a file
// that only this process may hold open.
func OpenBolt(path string) (*BoltStore, error) { return nil, errors.New("jobs: not implemented") }
