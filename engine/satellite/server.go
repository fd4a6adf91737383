package satellite

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/electric-sql/electric-go/engine/schema"
	"github.com/gorilla/websocket"
)

// Server accepts Satellite connections on /ws.
type Server struct {
	opts     Options
	upgrader websocket.Upgrader

	base   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	clients  map[string]*clientSlot // authenticated sessions by client id
	sessions map[*session]struct{}  // every open connection

	tablesMu sync.Mutex
	tables   *tableIndex
	tablesAt time.Time
	frames   frameCache

	stats serverStats

	spillOnce sync.Once
	spillSem  chan struct{} // spillPermit
}

type serverStats struct {
	connections atomic.Uint64
	txIn        atomic.Uint64
	txOut       atomic.Uint64
	duplicates  atomic.Uint64
	rejectedOps atomic.Uint64
	// Sessions refused or closed for abuse.
	ownerRefused atomic.Uint64 // auth with a client id bound to another user
	overLimit    atomic.Uint64 // a bound on names, relations or ids exceeded
	txTooLarge   atomic.Uint64 // a transaction over MaxTransactionBytes
	// Client writes refused and sent back.
	invalidRows     atomic.Uint64 // rows refused for a value a Postgres cannot hold
	ownershipRows   atomic.Uint64 // rows refused by the ownership rule
	heldTx          atomic.Uint64 // transactions held: their values could not be checked
	compensated     atomic.Uint64 // refused rows sent back to their client
	txSpilled       atomic.Uint64 // transactions spilled to disk (over SpillAfterBytes)
	rewound         atomic.Uint64 // clients found resuming from before what they had applied
	staleGeneration atomic.Uint64 // clients resumed from a restore's fence (generation.go)
}

// clientSlot holds a client id for one session at a time; released is closed
// once that session has ended and its transactions are durable or failed.
type clientSlot struct {
	sess     *session
	released chan struct{}
}

// New checks the options and returns a server; Handler serves it.
func New(opts Options) (*Server, error) {
	if opts.Log == nil || opts.Sink == nil || opts.Auth == nil || opts.Tables == nil {
		return nil, errors.New("creating satellite server: Log, Sink, Auth and Tables are required")
	}
	if len(opts.Fences) != int(opts.Generation) {
		return nil, fmt.Errorf("creating satellite server: generation %d with %d fences", opts.Generation, len(opts.Fences))
	}
	o := opts.withDefaults()
	s := &Server{
		opts:     o,
		clients:  map[string]*clientSlot{},
		sessions: map[*session]struct{}{},
	}
	// Node's ws client sends no Origin; browsers may come from anywhere (the
	// original accepted any host). Authentication is the first message.
	s.upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	s.base, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Handler serves the WebSocket endpoint /ws.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", s.serveWS)
	return mux
}

// Run returns when ctx is done, after closing every session.
func (s *Server) Run(ctx context.Context) error {
	<-ctx.Done()
	s.Close()
	return nil
}

// Close ends every session and refuses new ones.
func (s *Server) Close() {
	s.cancel()
	s.wg.Wait()
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if s.base.Err() != nil {
		http.Error(w, "server is shutting down", http.StatusServiceUnavailable)
		return
	}
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// Upgrade has answered the request with an HTTP error.
		s.opts.Logger.Debug("satellite upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	s.wg.Add(1)
	defer s.wg.Done()
	sess := newSession(s, conn, r.RemoteAddr)
	s.mu.Lock()
	s.sessions[sess] = struct{}{}
	s.mu.Unlock()
	s.stats.connections.Add(1)
	sess.run()
	s.mu.Lock()
	delete(s.sessions, sess)
	s.mu.Unlock()
}

// tablesRefresh is how often Options.Tables is asked again.
const tablesRefresh = 100 * time.Millisecond

var errDuplicateClient = errors.New("another live connection holds this client id")

// claim registers sess under id, waiting up to TakeoverWait for a previous
// session with that id to end (spec §3.2).
func (s *Server) claim(ctx context.Context, id string, sess *session) error {
	deadline := time.NewTimer(s.opts.TakeoverWait)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		slot := s.clients[id]
		if slot == nil {
			s.clients[id] = &clientSlot{sess: sess, released: make(chan struct{})}
			s.mu.Unlock()
			return nil
		}
		released := slot.released
		s.mu.Unlock()
		select {
		case <-released:
		case <-deadline.C:
			return fmt.Errorf("claiming client id %q: %w", id, errDuplicateClient)
		case <-ctx.Done():
			return fmt.Errorf("claiming client id %q: %w", id, ctx.Err())
		}
	}
}

func (s *Server) release(id string, sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if slot := s.clients[id]; slot != nil && slot.sess == sess {
		delete(s.clients, id)
		close(slot.released)
	}
}

// tableIndex resolves table ids and client relation names to the tables
// streamed to clients.
type tableIndex struct {
	src    []schema.Table
	byID   map[string]*schema.Table
	byName map[string]*schema.Table // unqualified name, when unique
	relID  map[string]uint32        // relation id announced to clients
}

// tableSet returns the index of Options.Tables(). Tables() is asked at most
// every tablesRefresh, and an equal table list keeps the same index (frames
// are shared per index, and a caller may build a new slice on every call).
func (s *Server) tableSet() *tableIndex {
	s.tablesMu.Lock()
	defer s.tablesMu.Unlock()
	now := time.Now()
	cur := s.tables
	if cur != nil && now.Sub(s.tablesAt) < tablesRefresh {
		return cur
	}
	s.tablesAt = now
	ts := s.opts.Tables()
	if cur != nil && (len(cur.src) == len(ts) && (len(ts) == 0 || &cur.src[0] == &ts[0]) || reflect.DeepEqual(cur.src, ts)) {
		return cur
	}
	idx := &tableIndex{src: ts, byID: map[string]*schema.Table{}, byName: map[string]*schema.Table{},
		relID: map[string]uint32{}}
	dup := map[string]bool{}
	used := map[uint32]bool{}
	for i := range ts {
		t := &ts[i]
		idx.byID[t.QualifiedName()] = t
		// The table's OID, as the original announced: stable across
		// sessions, so frames can be shared. Without one (or on a clash),
		// a hash of the name.
		id := t.OID
		if id == 0 || used[id] {
			h := fnv.New32a()
			_, _ = h.Write([]byte(t.QualifiedName()))
			id = h.Sum32() | 1<<31
			for used[id] {
				id++
			}
		}
		used[id] = true
		idx.relID[t.QualifiedName()] = id
		if _, seen := idx.byName[t.Name]; seen {
			dup[t.Name] = true
		}
		idx.byName[t.Name] = t
	}
	for n := range dup {
		delete(idx.byName, n)
	}
	s.tables = idx
	return idx
}

// resolve maps a client relation (0.4.3 always says schema "public") to a
// table: the exact schema.name first, else the only table with that name.
func (x *tableIndex) resolve(schemaName, name string) *schema.Table {
	if t := x.byID[schemaName+"."+name]; t != nil {
		return t
	}
	return x.byName[name]
}

// SessionInfo is a snapshot of one connection for the status API.
type SessionInfo struct {
	ClientID      string
	UserID        string
	RemoteAddr    string
	ConnectedAt   time.Time
	Authenticated bool
	// InboundActive: the client streams its writes (it answered our
	// SatInStartReplicationReq). InboundLSN is the last client lsn acked.
	InboundActive bool
	InboundLSN    []byte
	// OutboundActive: the client receives the log. OutboundOffset is the
	// last log offset processed for it, AckedOffset the last it acknowledged.
	OutboundActive bool
	OutboundOffset uint64
	AckedOffset    uint64
	TxIn           uint64 // client transactions made durable
	TxOut          uint64 // transactions sent
	Duplicates     uint64 // re-sent client transactions acked again, not applied
	RejectedOps    uint64 // client ops not applied (ownership, unknown table, …)
	Resyncs        uint64 // restarts of the client's stream to make it re-send
	Lag            uint64 // log head minus OutboundOffset while outbound is active
}

// Sessions returns a snapshot of every open connection, ordered by connect
// time.
func (s *Server) Sessions() []SessionInfo {
	s.mu.Lock()
	list := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		list = append(list, sess)
	}
	s.mu.Unlock()
	head := s.opts.Log.Head()
	out := make([]SessionInfo, 0, len(list))
	for _, sess := range list {
		out = append(out, sess.info(head))
	}
	slices.SortFunc(out, func(a, b SessionInfo) int { return a.ConnectedAt.Compare(b.ConnectedAt) })
	return out
}

// Status is the server-wide counters.
type Status struct {
	Sessions      int
	Authenticated int
	Connections   uint64 // accepted since start
	TxIn          uint64
	TxOut         uint64
	Duplicates    uint64
	RejectedOps   uint64
	// OwnerRefused counts auths refused because the client id belongs to
	// another user; OverLimit sessions closed for going over a bound on
	// ids, names or relations; TxTooLarge sessions closed for a
	// transaction over MaxTransactionBytes.
	OwnerRefused uint64
	OverLimit    uint64
	TxTooLarge   uint64
	// InvalidRows and OwnershipRows count client rows refused (Rejection
	// kinds), HeldTx transactions held because no Postgres could check
	// their values, Compensated refused rows sent back to their client.
	InvalidRows   uint64
	OwnershipRows uint64
	HeldTx        uint64
	Compensated   uint64
	// TxSpilled counts client transactions spilled to disk while received
	// (over SpillAfterBytes).
	TxSpilled uint64
	// Rewound counts sessions whose client resumed from before the log
	// offset it had applied (its local database restored): rewind.go.
	Rewound uint64
	// StaleGeneration counts clients that came back with a position of an
	// earlier generation beyond its restore's fence: generation.go.
	StaleGeneration uint64
}

// Status returns the server-wide counters.
func (s *Server) Status() Status {
	s.mu.Lock()
	st := Status{Sessions: len(s.sessions), Authenticated: len(s.clients)}
	s.mu.Unlock()
	st.Connections = s.stats.connections.Load()
	st.TxIn = s.stats.txIn.Load()
	st.TxOut = s.stats.txOut.Load()
	st.Duplicates = s.stats.duplicates.Load()
	st.RejectedOps = s.stats.rejectedOps.Load()
	st.OwnerRefused = s.stats.ownerRefused.Load()
	st.OverLimit = s.stats.overLimit.Load()
	st.TxTooLarge = s.stats.txTooLarge.Load()
	st.InvalidRows = s.stats.invalidRows.Load()
	st.OwnershipRows = s.stats.ownershipRows.Load()
	st.HeldTx = s.stats.heldTx.Load()
	st.Compensated = s.stats.compensated.Load()
	st.TxSpilled = s.stats.txSpilled.Load()
	st.Rewound = s.stats.rewound.Load()
	st.StaleGeneration = s.stats.staleGeneration.Load()
	return st
}

// frameKey names the SatOpLog frames of one entry for one selection of
// rows: user is empty when every session gets the same rows.
type frameKey struct {
	offset uint64
	tables *tableIndex
	user   string
}

// frameCache keeps the encoded frames of recent entries, so that sessions
// at the head encode each entry once. Bounded by bytes; oldest out first.
type frameCache struct {
	mu    sync.Mutex
	m     map[frameKey][][]byte
	order []frameKey
	bytes int
}

const frameCacheBytes = 16 << 20

func (c *frameCache) get(k frameKey) ([][]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.m[k]
	return f, ok
}

func (c *frameCache) put(k frameKey, frames [][]byte) {
	n := 64
	for _, f := range frames {
		n += len(f)
	}
	if n > frameCacheBytes/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[frameKey][][]byte{}
	}
	if _, ok := c.m[k]; ok {
		return
	}
	c.m[k] = frames
	c.order = append(c.order, k)
	c.bytes += n
	for c.bytes > frameCacheBytes && len(c.order) > 0 {
		old := c.order[0]
		c.order = c.order[1:]
		for _, f := range c.m[old] {
			c.bytes -= len(f)
		}
		c.bytes -= 64
		delete(c.m, old)
	}
}
