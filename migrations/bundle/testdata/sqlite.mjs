// Test helper: applies a migrations bundle to an in-memory SQLite database the
// way electric-sql@0.4.3 does (its own base migration first, then each
// migration's statements in one transaction), then runs probe statements.
// Reads {migrations, probes:[{sql, args, all}]} as JSON on stdin; writes
// {ok, results:[{rows}|{changes}|{error}]} or {ok:false, error, migration}.
// SATINTEROP_DIR is the folder whose node_modules holds the client.
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import path from 'node:path'

const dir = process.env.SATINTEROP_DIR
const require = createRequire(path.join(dir, 'package.json'))
const Database = require('better-sqlite3')
const { data: base } = await import(pathToFileURL(path.join(dir, 'node_modules/electric-sql/dist/migrators/schema.js')).href)

let input = ''
for await (const chunk of process.stdin) input += chunk
const { migrations, probes = [] } = JSON.parse(input)

const db = new Database(':memory:')
for (const m of [...base.migrations, ...migrations]) {
  try {
    db.transaction(() => { for (const s of m.satellite_body) db.prepare(s).run() })()
  } catch (e) {
    process.stdout.write(JSON.stringify({ ok: false, migration: m.name, error: String(e.message) }) + '\n')
    process.exit(0)
  }
}
const results = probes.map(({ sql, args = [], all }) => {
  try {
    const st = db.prepare(sql)
    return all ? { rows: st.all(...args) } : { changes: st.run(...args).changes }
  } catch (e) {
    return { error: String(e.message) }
  }
})
process.stdout.write(JSON.stringify({ ok: true, results }) + '\n')
