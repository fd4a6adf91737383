package engine

import (
	"context"
	"encoding/hex"

	"github.com/electric-sql/electric-go/engine/satellite"
	"github.com/electric-sql/electric-go/engine/status"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// provider adapts the engine's parts to the status API's snapshots.
type provider struct{ e *Engine }

func (p provider) Status(context.Context) (status.Status, error) {
	s := status.Status{Connectors: map[string]status.ConnectorState{}, LogHealthy: p.e.seq.Status().Running}
	for _, c := range p.e.conns {
		s.Connectors[c.cfg.Name] = c.state()
	}
	return s, nil
}

func (p provider) Connectors(context.Context) ([]status.Connector, error) {
	head := p.e.txlog.Head()
	pubs := map[string]int{}
	ps := p.e.pub.Status()
	for i, c := range ps.Connectors {
		pubs[c.Connector] = i
	}
	out := make([]status.Connector, 0, len(p.e.conns))
	for _, c := range p.e.conns {
		src := c.source.Status()
		state, reason := c.readiness()
		sc := status.Connector{
			Name: c.cfg.Name, State: state, Error: src.LastError, NotReadyReason: reason,
			Slot: src.Slot, ConfirmedLSN: status.LSN(src.ConfirmedLSN), FlushedLSN: status.LSN(src.ReceivedLSN),
			WALRetainedBytes: src.WALRetainedBytes, SourceLagBytes: src.LagBytes, SourceLagSeconds: src.LagSeconds,
			Transactions: src.Txs, TxPerSecond: src.TxPerSec,
		}
		if sn := src.Snapshot; sn.Active || sn.Done {
			sc.Snapshot = &status.Snapshot{Active: sn.Active, Done: sn.Done, Table: sn.Table, Tables: sn.Tables,
				TablesTotal: sn.TablesTotal, Rows: sn.Rows, ElapsedSeconds: sn.Elapsed.Seconds()}
		}
		sc.WALStatus, sc.SlotInvalidations, sc.SlotLost = src.WALStatus, src.SlotInvalidations, src.SlotLost
		if sc.Error == "" {
			sc.Error = src.SlotLost // the dashboard shows Error
		}
		sub := c.sub.Status()
		if sc.Error == "" {
			sc.Error = sub.LastError
		}
		if sc.Error == "" && state == status.StateError {
			// A failing or lagging subscriber: the dashboard shows Error.
			sc.Error = reason
		}
		sc.Subscriber.ApplyErrors = sub.ApplyErrors
		sc.Subscriber.WithheldRows = p.e.withheld.Count(c.cfg.Name)
		if !src.LastTxTime.IsZero() {
			t := src.LastTxTime
			sc.LastTxTime = &t
		}
		sc.Subscriber.State = "waiting"
		if i, ok := pubs[c.cfg.Name]; ok {
			pc := ps.Connectors[i]
			if pc.Streaming {
				sc.Subscriber.State = "streaming"
			} else {
				sc.Subscriber.State = "stopped"
			}
			sc.Subscriber.AppliedOffset = pc.AppliedOffset
			sc.Subscriber.AppliedLSN = status.LSN(txlog.LSN(pc.AppliedOffset))
			if head > pc.AppliedOffset {
				sc.Subscriber.LagEntries = head - pc.AppliedOffset
			}
		}
		out = append(out, sc)
	}
	// Connectors taken out of CONNECTORS whose state is still here.
	out = append(out, p.e.orphanStatuses()...)
	return out, nil
}

func (p provider) Log(context.Context) (status.Log, error) {
	st := p.e.txlog.Stats()
	return status.Log{Head: st.Head, SizeBytes: st.SizeBytes, EntriesPerSecond: st.EntriesPerSec, Healthy: p.e.seq.Status().Running}, nil
}

func (p provider) Sessions(context.Context) ([]status.Session, error) {
	ss := p.e.sat.Sessions()
	out := make([]status.Session, 0, len(ss))
	for _, s := range ss {
		out = append(out, sessionStatus(s))
	}
	return out, nil
}

func sessionStatus(s satellite.SessionInfo) status.Session {
	st := "authenticating"
	switch {
	case s.InboundActive || s.OutboundActive:
		st = "replicating"
	case s.Authenticated:
		st = "connected"
	}
	out := status.Session{
		ClientID: s.ClientID, User: s.UserID, RemoteAddr: s.RemoteAddr, ConnectedSince: s.ConnectedAt, State: st,
		InboundLSN: hex.EncodeToString(s.InboundLSN), OutboundOffset: s.OutboundOffset,
		TxIn: s.TxIn, TxOut: s.TxOut, LagEntries: s.Lag,
	}
	if s.OutboundActive {
		out.OutboundLSN = hex.EncodeToString(satellite.ServerLSN(s.OutboundOffset))
	}
	return out
}
