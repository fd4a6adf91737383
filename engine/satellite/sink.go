package satellite

import (
	"context"

	"github.com/electric-sql/electric-go/engine/merge"
)

// Item is one client transaction handed to the sequencer (the contract of
// sequencer.Item).
type Item struct {
	Source        string
	Position      []byte
	Tx            merge.Tx
	ContextOffset uint64
	Done          func(offset uint64, err error)
}

// Sink takes client transactions (the sequencer). Enqueue blocks while the
// sink is full; Done is called once the item is durable.
type Sink interface {
	Enqueue(ctx context.Context, it Item) error
}
