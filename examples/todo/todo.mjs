#!/usr/bin/env node
// A local-first todo list: the todos live in a local SQLite file, and the
// published client electric-sql@0.4.3 syncs them with electric (and through
// it with every Postgres). The schema comes from the migrations bundle that
// `electric migrate build` writes (dist/electric).
//
//   node todo.mjs add "buy milk"     add a todo, print its id
//   node todo.mjs list               sync, then print every todo
//   node todo.mjs done <id>          mark a todo completed
//   node todo.mjs delete <id>        delete a todo
//
// Environment: TODO_DB (SQLite file, default todo.db), ELECTRIC_BUNDLE
// (bundle folder, default dist/electric), ELECTRIC_HOST (127.0.0.1),
// ELECTRIC_PORT (5133), ELECTRIC_TOKEN (in insecure dev mode the token is the
// user id; default "todo-user"), TODO_SETTLE_MS (how long list waits for
// changes from the server, default 1500). Each command connects, waits until
// its write is acknowledged by electric, and exits.
import { randomUUID } from 'node:crypto'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

// The client logs with console.log: keep stdout for the app's output.
const out = (s) => process.stdout.write(s + '\n')
console.log = console.info = console.debug = () => {}

const Database = (await import('better-sqlite3')).default
const { electrify } = await import('electric-sql/node')
const { globalRegistry } = await import('electric-sql/satellite')

const env = (k, d) => process.env[k] || d
const ACTIVE = 3 // ReplicationStatus.ACTIVE in electric-sql 0.4.3
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

async function until(what, cond, ms = 20000) {
  for (const end = Date.now() + ms; !cond(); await sleep(20)) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
  }
}

async function open() {
  const bundleDir = path.resolve(env('ELECTRIC_BUNDLE', 'dist/electric'))
  let config
  try {
    config = (await import(pathToFileURL(path.join(bundleDir, 'index.js')).href)).default
  } catch (e) {
    throw new Error(`no migrations bundle in ${bundleDir} (run \`electric migrate build\`): ${e.message}`)
  }
  const raw = new Database(env('TODO_DB', 'todo.db'))
  const token = env('ELECTRIC_TOKEN', 'todo-user')
  const db = await electrify(raw, {
    app: 'todo',
    env: 'dev',
    migrations: config.migrations,
    replication: { host: env('ELECTRIC_HOST', '127.0.0.1'), port: Number(env('ELECTRIC_PORT', '5133')), ssl: false },
  }, { console: { token: async () => ({ token, refreshToken: '' }) } })
  // 0.4.3 resolves electrify before it has connected: wait for both streams.
  await until('electric (is the engine running?)', () => {
    const s = globalRegistry.satellites[raw.name]
    return s && s.client.inbound.isReplicating === ACTIVE && s.client.outbound.isReplicating === ACTIVE
  })
  return { db, raw }
}

// Waits until electric has acknowledged every local write.
async function synced(raw) {
  const pending = () => {
    const acked = raw.prepare("SELECT value FROM _electric_meta WHERE key = 'lastAckdRowId'").get().value
    return raw.prepare('SELECT count(*) AS n FROM _electric_oplog WHERE rowid > ?').get(Number(acked)).n
  }
  await until('electric to acknowledge the write', () => pending() === 0)
}

const [cmd, arg] = process.argv.slice(2)
try {
  const { db, raw } = await open()
  switch (cmd) {
    case 'add': {
      if (!arg) throw new Error('usage: todo add <title>')
      const id = randomUUID()
      db.prepare('INSERT INTO todos (id, title, completed, created_at) VALUES (?, ?, ?, ?)')
        .run(id, arg, 'f', new Date().toISOString())
      await synced(raw)
      out(id)
      break
    }
    case 'done':
    case 'delete': {
      if (!arg) throw new Error(`usage: todo ${cmd} <id>`)
      const r = cmd === 'done'
        ? db.prepare("UPDATE todos SET completed = 't' WHERE id = ?").run(arg)
        : db.prepare('DELETE FROM todos WHERE id = ?').run(arg)
      if (r.changes !== 1) throw new Error(`no todo ${arg}`)
      await synced(raw)
      break
    }
    case 'list': {
      await sleep(Number(env('TODO_SETTLE_MS', '1500')))
      for (const t of raw.prepare('SELECT id, title, completed FROM todos ORDER BY created_at, id').all()) {
        out(`${t.completed === 't' ? '[x]' : '[ ]'} ${t.id} ${t.title}`)
      }
      break
    }
    default:
      throw new Error('usage: todo add <title> | list | done <id> | delete <id>')
  }
  process.exit(0)
} catch (e) {
  process.stderr.write(`todo: ${e.message}\n`)
  process.exit(1)
}
