// Test driver: runs ONE published electric-sql@0.4.3 client (better-sqlite3)
// against a Satellite server, controlled by JSON commands, one per line on
// stdin; one JSON reply per command on stdout ({ok:true, ...} or
// {ok:false, error}). The client's own logging goes to stderr so stdout stays
// parseable. If the client crashes (it exits on several protocol errors),
// the process exits non-zero and the Go test sees it.
//
// Commands:
//   {op:"open", db, host, port, token, tables:[{name, columns:[{name,type,pk}]}]}
//       builds the migrations bundle (tables, trigger settings, the four
//       oplog triggers the Electric CLI generated), electrifies the database
//       and waits until both replication streams are active. With
//       migrations:[...] instead of tables, uses that bundle as given.
//   {op:"exec", sql, args}          run a write through the electrified db
//   {op:"query", sql, args}         rows as JSON
//   {op:"meta"}                     _electric_meta and the oplog length
//   {op:"reconnect"}                disconnected → available, wait until active
//   {op:"wait_acked"}               wait until every local write is acked
//   {op:"exit"}
import { createHash } from 'node:crypto'
import { createInterface } from 'node:readline'

// Keep stdout for replies: loglevel and friends write with console.log.
const reply = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
console.log = (...a) => console.error(...a)
console.info = (...a) => console.error(...a)
console.debug = (...a) => console.error(...a)

const { default: Database } = await import('better-sqlite3')
const { electrify } = await import('electric-sql/node')
const { globalRegistry } = await import('electric-sql/satellite')

const ACTIVE = 3 // ReplicationStatus.ACTIVE in electric-sql 0.4.3

let db // electrified database
let raw // the better-sqlite3 handle

const ident = (s) => {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(s)) throw new Error(`unsupported identifier ${s}`)
  return s
}

// The migration the Electric CLI of early 2023 generated for a table.
function tableMigration(t) {
  const n = ident(t.name)
  const cols = t.columns.map((c) => ident(c.name))
  const pks = t.columns.filter((c) => c.pk).map((c) => c.name)
  const q = `'main.${n}'`
  const json = (prefix, names) => `json_object(${names.map((c) => `'${c}', ${prefix}.${c}`).join(', ')})`
  const colDefs = t.columns.map((c) => `${c.name} ${c.type}${c.pk && pks.length === 1 ? ' PRIMARY KEY' : ''}`)
  if (pks.length > 1) colDefs.push(`PRIMARY KEY (${pks.join(', ')})`)
  const when = `WHEN 1 == (SELECT flag from _electric_trigger_settings WHERE tablename == ${q})`
  const oplog = (op, pkFrom, newRow, oldRow) =>
    `INSERT INTO _electric_oplog (namespace, tablename, optype, primaryKey, newRow, oldRow, timestamp)
       VALUES ('main', '${n}', '${op}', ${json(pkFrom, pks)}, ${newRow}, ${oldRow}, NULL);`
  return [
    `CREATE TABLE IF NOT EXISTS ${n} (${colDefs.join(', ')});`,
    `INSERT OR IGNORE INTO _electric_trigger_settings(tablename,flag) VALUES (${q}, 1);`,
    `DROP TRIGGER IF EXISTS update_ensure_main_${n}_primarykey;`,
    `CREATE TRIGGER update_ensure_main_${n}_primarykey BEFORE UPDATE ON ${n}
       BEGIN SELECT CASE ${pks.map((p) => `WHEN old.${p} != new.${p} THEN RAISE (ABORT,'cannot change the value of column ${p} as it belongs to the primary key')`).join(' ')} END; END;`,
    `DROP TRIGGER IF EXISTS insert_main_${n}_into_oplog;`,
    `CREATE TRIGGER insert_main_${n}_into_oplog AFTER INSERT ON ${n} ${when}
       BEGIN ${oplog('INSERT', 'new', json('new', cols), 'NULL')} END;`,
    `DROP TRIGGER IF EXISTS update_main_${n}_into_oplog;`,
    `CREATE TRIGGER update_main_${n}_into_oplog AFTER UPDATE ON ${n} ${when}
       BEGIN ${oplog('UPDATE', 'new', json('new', cols), json('old', cols))} END;`,
    `DROP TRIGGER IF EXISTS delete_main_${n}_into_oplog;`,
    `CREATE TRIGGER delete_main_${n}_into_oplog AFTER DELETE ON ${n} ${when}
       BEGIN ${oplog('DELETE', 'old', 'NULL', json('old', cols))} END;`,
  ]
}

function bundle(tables) {
  const body = tables.flatMap(tableMigration)
  const sha256 = createHash('sha256').update(body.join('\n')).digest('hex')
  return [{ encoding: 'escaped', name: '1669232573_init', title: 'init', sha256, satellite_body: body }]
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function satellite() {
  const s = globalRegistry.satellites[raw.name]
  if (!s) throw new Error('satellite not started')
  return s
}

async function until(what, cond, ms = 20000) {
  const end = Date.now() + ms
  for (;;) {
    if (await cond()) return
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

// Both streams active: the client's start request was answered, and the
// server asked the client to stream its writes.
async function waitActive() {
  await until('replication to start', () => {
    const s = globalRegistry.satellites[raw.name]
    return s && s.client.inbound.isReplicating === ACTIVE && s.client.outbound.isReplicating === ACTIVE
  })
}

function meta() {
  const rows = raw.prepare('SELECT key, value FROM _electric_meta').all()
  const m = Object.fromEntries(rows.map((r) => [r.key, r.value == null ? null : String(r.value)]))
  m.oplog = raw.prepare('SELECT count(*) AS n FROM _electric_oplog').get().n
  m.pending = raw.prepare('SELECT count(*) AS n FROM _electric_oplog WHERE rowid > ?').get(Number(m.lastAckdRowId)).n
  return m
}

const handlers = {
  async open({ db: path, host, port, token, tables, migrations }) {
    raw = new Database(path)
    const config = {
      app: 'interop',
      env: 'test',
      migrations: migrations ?? bundle(tables),
      replication: { host, port, ssl: false },
      debug: Boolean(process.env.SATCLIENT_DEBUG),
    }
    const consoleClient = { token: async () => ({ token, refreshToken: '' }) }
    db = await electrify(raw, config, { console: consoleClient })
    // 0.4.3 resolves electrify before the satellite has started.
    await until('satellite process', () => globalRegistry.satellites[raw.name] !== undefined)
    await waitActive()
    return { clientId: meta().clientId }
  },
  async exec({ sql, args = [] }) {
    const r = db.prepare(sql).run(...args)
    return { changes: r.changes }
  },
  async query({ sql, args = [] }) {
    return { rows: raw.prepare(sql).all(...args) }
  },
  async meta() {
    return { meta: meta() }
  },
  async debug() {
    const s = satellite()
    const o = s.client.outbound
    return {
      outbound: { status: o.isReplicating, enqueued: o.enqueued_lsn && Array.from(o.enqueued_lsn), ack: o.ack_lsn && Array.from(o.ack_lsn), queued: o.transactions.length },
      inbound: { status: s.client.inbound.isReplicating, ack: s.client.inbound.ack_lsn && Array.from(s.client.inbound.ack_lsn) },
      closed: s.client.isClosed(),
      lastAckdRowId: s._lastAckdRowId,
      lastSentRowId: s._lastSentRowId,
    }
  },
  async wait_acked() {
    await until('local writes to be acked', () => meta().pending === 0)
    return {}
  },
  async reconnect() {
    // 0.4.3 crashes when its throttled push of local writes fires after the
    // client closed (client notes, V): let every local write be sent first.
    // With the server gone the client has not noticed (G) and still sends.
    // Usually they are sent within the push window; a client that has not
    // pushed them after 2 s (seen under load) has at least fired its throttle.
    const sent = () => {
      const { m } = raw.prepare('SELECT coalesce(max(rowid), 0) AS m FROM _electric_oplog').get()
      return m <= Number(satellite()._lastSentRowId ?? 0)
    }
    for (const end = Date.now() + 2000; !sent() && Date.now() < end;) await sleep(20)
    await sleep(300) // the push that sent them may still be returning
    const n = db.electric.notifier
    n.connectivityStateChange(raw.name, 'disconnected')
    await until('client closed', () => satellite().client.isClosed())
    n.connectivityStateChange(raw.name, 'available')
    await waitActive()
    return {}
  },
  async exit() {
    reply({ ok: true })
    process.exit(0)
  },
}

const rl = createInterface({ input: process.stdin })
// Commands run one at a time, in order.
let chain = Promise.resolve()
rl.on('line', (line) => {
  chain = chain.then(async () => {
    let cmd
    try {
      cmd = JSON.parse(line)
      const h = handlers[cmd.op]
      if (!h) throw new Error(`unknown op ${cmd.op}`)
      reply({ ok: true, ...(await h(cmd)) })
    } catch (e) {
      reply({ ok: false, error: String(e && e.stack ? e.stack : e) })
    }
  })
})
rl.on('close', () => chain.then(() => process.exit(0)))
