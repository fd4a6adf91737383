package satellite

import (
	"context"

	"github.com/electric-sql/electric-go/engine/sequencer"
)

// Item is one client transaction handed to the sequencer. Its Done runs
// once the transaction is durable; the session acks it to the client then.
type Item = sequencer.Item

// Sink takes client transactions (the sequencer). Enqueue blocks while the
// sink is full; Done is called once the item is durable.
type Sink interface {
	Enqueue(ctx context.Context, it Item) error
}
