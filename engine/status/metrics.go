package status

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// scrapeTimeout bounds how long one /metrics scrape waits on the Provider.
const scrapeTimeout = 5 * time.Second

// collector reads the Provider at scrape time, so the metrics are never
// staler than the snapshots and no component keeps metric state of its own.
type collector struct {
	p     Provider
	audit AuditLog // nil: no audit metrics

	up, connReady, confirmed, flushed, walRetained, lagBytes, lagSeconds *prometheus.Desc
	lastTx, txTotal, applied, subLag, applyErrors, withheld              *prometheus.Desc
	slotLost                                                             *prometheus.Desc
	logHead, logSize, logHealthy                                         *prometheus.Desc
	sessions, sessTxIn, sessTxOut, sessLag                               *prometheus.Desc
	auditEvents, auditDropped                                            *prometheus.Desc
}

func newCollector(p Provider, audit AuditLog) *collector {
	conn := []string{"connector"}
	sess := []string{"client_id"}
	d := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc("electric_"+name, help, labels, nil)
	}
	return &collector{
		p:           p,
		audit:       audit,
		auditEvents: d("audit_events_total", "Conflicts and rejections recorded, by kind and table (_other past 1,000 tables).", []string{"kind", "table"}),
		auditDropped: d("audit_events_lost_total", "Audit events not stored: dropped because the store was slower than they arrived, or lost to a write error.",
			[]string{"reason"}),
		up:          d("status_up", "1 when every snapshot of the status provider could be read.", nil),
		connReady:   d("connector_ready", "1 when the connector is ready (replicating both ways).", conn),
		confirmed:   d("connector_confirmed_lsn", "LSN confirmed to the source's replication slot.", conn),
		flushed:     d("connector_flushed_lsn", "Highest commit end LSN received from the source.", conn),
		walRetained: d("connector_wal_retained_bytes", "WAL the source keeps for the connector's slot.", conn),
		lagBytes:    d("connector_source_lag_bytes", "Source WAL not yet confirmed by the engine.", conn),
		lagSeconds:  d("connector_source_lag_seconds", "How far behind the source the engine is.", conn),
		lastTx:      d("connector_last_transaction_timestamp_seconds", "Commit time of the last transaction received.", conn),
		txTotal:     d("connector_transactions_total", "Transactions received from the source.", conn),
		applied:     d("connector_applied_offset", "Log offset applied by the connector's subscriber.", conn),
		subLag:      d("connector_subscriber_lag_entries", "Log entries not yet applied by the subscriber.", conn),
		applyErrors: d("connector_apply_errors_total", "Apply errors of the connector's subscription (pg_stat_subscription_stats).", conn),
		withheld:    d("connector_withheld_rows", "Rows withheld from the connector's subscriber because its Postgres cannot apply them.", conn),
		slotLost:    d("connector_slot_invalidations_total", "Replication slots Postgres invalidated (max_slot_wal_keep_size) that the engine recreated: the changes in between must be read again.", conn),
		logHead:     d("log_head_offset", "Offset of the last committed log entry.", nil),
		logSize:     d("log_size_bytes", "Size of the transaction log on disk.", nil),
		logHealthy:  d("log_healthy", "1 when the log store is healthy.", nil),
		sessions:    d("satellite_sessions", "Connected Satellite clients.", nil),
		sessTxIn:    d("satellite_session_transactions_in_total", "Transactions received from a Satellite client.", sess),
		sessTxOut:   d("satellite_session_transactions_out_total", "Transactions sent to a Satellite client.", sess),
		sessLag:     d("satellite_session_lag_entries", "Log entries not yet sent to a Satellite client.", sess),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.connReady, c.confirmed, c.flushed, c.walRetained,
		c.lagBytes, c.lagSeconds, c.lastTx, c.txTotal, c.applied, c.subLag, c.applyErrors, c.withheld, c.slotLost, c.logHead, c.logSize,
		c.logHealthy, c.sessions, c.sessTxIn, c.sessTxOut, c.sessLag, c.auditEvents, c.auditDropped} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	up := 1.0
	if cs, err := c.p.Connectors(ctx); err != nil {
		up = 0
		ch <- prometheus.NewInvalidMetric(c.connReady, err)
	} else {
		for _, cn := range cs {
			gauge(c.connReady, b2f(cn.State == StateReady), cn.Name)
			gauge(c.confirmed, float64(cn.ConfirmedLSN), cn.Name)
			gauge(c.flushed, float64(cn.FlushedLSN), cn.Name)
			gauge(c.walRetained, float64(cn.WALRetainedBytes), cn.Name)
			gauge(c.lagBytes, float64(cn.SourceLagBytes), cn.Name)
			gauge(c.lagSeconds, cn.SourceLagSeconds, cn.Name)
			if cn.LastTxTime != nil {
				gauge(c.lastTx, float64(cn.LastTxTime.UnixNano())/1e9, cn.Name)
			}
			counter(c.txTotal, float64(cn.Transactions), cn.Name)
			gauge(c.applied, float64(cn.Subscriber.AppliedOffset), cn.Name)
			gauge(c.subLag, float64(cn.Subscriber.LagEntries), cn.Name)
			counter(c.applyErrors, float64(cn.Subscriber.ApplyErrors), cn.Name)
			gauge(c.withheld, float64(cn.Subscriber.WithheldRows), cn.Name)
			counter(c.slotLost, float64(cn.SlotInvalidations), cn.Name)
		}
	}
	if l, err := c.p.Log(ctx); err != nil {
		up = 0
		ch <- prometheus.NewInvalidMetric(c.logHead, err)
	} else {
		gauge(c.logHead, float64(l.Head))
		gauge(c.logSize, float64(l.SizeBytes))
		gauge(c.logHealthy, b2f(l.Healthy))
	}
	if ss, err := c.p.Sessions(ctx); err != nil {
		up = 0
		ch <- prometheus.NewInvalidMetric(c.sessions, err)
	} else {
		gauge(c.sessions, float64(len(ss)))
		for _, s := range ss {
			counter(c.sessTxIn, float64(s.TxIn), s.ClientID)
			counter(c.sessTxOut, float64(s.TxOut), s.ClientID)
			gauge(c.sessLag, float64(s.LagEntries), s.ClientID)
		}
	}
	if c.audit != nil {
		st := c.audit.Stats()
		for kind, m := range st.Recorded {
			for table, n := range m {
				counter(c.auditEvents, float64(n), kind, table)
			}
		}
		counter(c.auditDropped, float64(st.Dropped), "dropped")
		counter(c.auditDropped, float64(st.Failed), "failed")
	}
	gauge(c.up, up)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
