package merge

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata/*.txt")

// TestDataDriven runs the conflict-semantics cases of testdata/*.txt.
//
// A file is a sequence of cases. A case is comment lines (#), input lines,
// a line "----", then the expected output, up to a blank line or the end.
// Input:
//
//	tx <origin> time=<µs> [now=<µs>] [ctx=<origin>#<n>] [ctxeff=<µs>]
//	insert <table> <key> <col>=<value>... [old.<col>=<value>...]
//	update <table> <key> <col>=<value>... [old.<col>=<value>...]
//	delete <table> <key> [old.<col>=<value>...]
//	truncate <table>
//
// A value is 'text' (a quote inside is doubled) or NULL. ctx=<origin>#<n>
// says the origin had applied the log up to and including that origin's
// n-th transaction of the case (a context is a prefix of the log: see the
// package comment, "Causal context"); without it, none of it. ctxeff=
// raises the highest eff the context holds (a log poisoned before clocks
// were bounded). now= is the engine's time when it merged the transaction
// (Tx.Now; absent: 0). Transactions arrive in the order written, each with
// originLast = the origin's previous eff. The output lists each
// transaction's eff and changed rows (or the error that refused it: a
// refused transaction changes nothing and is left out of the other
// orders), then every row state, tags as origin@eff#offset. The harness
// then replays the transactions in every other order a log could have had
// them in (see replayLog) and fails unless each gives the same rows (tag
// offsets aside); the last line says how many orders were checked.
func TestDataDriven(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) { runFile(t, file) })
	}
}

type ddCase struct {
	line     int // of the first input line
	comments []string
	input    []string
	expected string
}

func readCases(t *testing.T, file string) []ddCase {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []ddCase
	var cur ddCase
	state := 0 // 0 before input, 1 in input, 2 in expected output
	var exp []string
	flush := func() {
		if state == 2 {
			cur.expected = strings.Join(exp, "\n")
			cases = append(cases, cur)
		} else if state == 1 {
			t.Fatalf("%s:%d: case without ----", file, cur.line)
		}
		cur, exp, state = ddCase{}, nil, 0
	}
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case state == 2 && line == "":
			flush()
		case state == 2:
			exp = append(exp, line)
		case strings.TrimSpace(line) == "":
			if state == 0 && len(cur.comments) > 0 {
				cur.comments = append(cur.comments, "")
			}
		case strings.HasPrefix(line, "#"):
			cur.comments = append(cur.comments, line)
		case line == "----":
			state = 2
		default:
			if state == 0 {
				cur.line = n
			}
			state = 1
			cur.input = append(cur.input, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	flush()
	return cases
}

func runFile(t *testing.T, file string) {
	cases := readCases(t, file)
	var out strings.Builder
	for i, c := range cases {
		got, err := runCase(c)
		if err != nil {
			t.Errorf("%s:%d: %v", file, c.line, err)
			got = "error: " + err.Error()
		}
		if *rewrite {
			if i > 0 {
				out.WriteString("\n")
			}
			for _, l := range c.comments {
				out.WriteString(l + "\n")
			}
			for _, l := range c.input {
				out.WriteString(l + "\n")
			}
			out.WriteString("----\n" + got + "\n")
			continue
		}
		if got != c.expected {
			t.Errorf("%s:%d: output differs\n--- got:\n%s\n--- want:\n%s", file, c.line, got, c.expected)
		}
	}
	if *rewrite {
		if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// ddTx is one transaction of a case, with its context still symbolic.
type ddTx struct {
	label  string // origin#n
	tx     Tx
	ref    string // the last transaction of the context, "" for none
	ctxEff uint64
}

func runCase(c ddCase) (string, error) {
	txs, err := parseCase(c.input)
	if err != nil {
		return "", err
	}
	// Merge in the written order, as the sequencer would.
	var out []string
	s := memStore{}
	maxEff := []uint64{0}           // by offset
	offAfter := map[string]uint64{} // label → log head once it was merged
	index := map[string]int{}       // label → index among the accepted
	last := map[string]uint64{}
	var accepted []ddTx
	var seen []int
	var ctxEffs []uint64
	var entries []bool
	for i := range txs {
		d := &txs[i]
		n := 0
		if d.ref != "" {
			off, ok := offAfter[d.ref]
			if !ok {
				return "", fmt.Errorf("%s: context names %s, which is not an earlier accepted transaction", d.label, d.ref)
			}
			d.tx.Context = off
			n = index[d.ref] + 1
		}
		tx := d.tx
		tx.Offset = uint64(len(maxEff))
		tx.ContextEff = max(maxEff[tx.Context], d.ctxEff)
		res, err := Apply(s, last[tx.Origin], tx)
		if err != nil {
			if !errors.Is(err, ErrInvalidTx) {
				return "", fmt.Errorf("%s: %w", d.label, err)
			}
			out = append(out, fmt.Sprintf("%s refused: %v", d.label, err))
			continue
		}
		if err := checkChanges(res); err != nil {
			return "", fmt.Errorf("%s: %w", d.label, err)
		}
		index[d.label] = len(accepted)
		accepted = append(accepted, *d)
		seen = append(seen, n)
		ctxEffs = append(ctxEffs, d.ctxEff)
		entries = append(entries, len(res.Changes) > 0)
		if len(res.Changes) > 0 {
			s.commit(res)
			maxEff = append(maxEff, max(maxEff[len(maxEff)-1], res.Eff))
			last[tx.Origin] = res.Eff
		}
		offAfter[d.label] = uint64(len(maxEff) - 1)
		line := fmt.Sprintf("%s eff=%d:", d.label, res.Eff)
		for _, ch := range res.Changes {
			line += fmt.Sprintf(" %s %s %s;", ch.Table, showKey(ch.Key), liveWord(ch.Live))
		}
		if len(res.Changes) == 0 {
			line += " no row changed"
		}
		out = append(out, strings.TrimSuffix(line, ";"))
	}
	out = append(out, rowsString(s, true))
	want := rowsString(s, false)

	plain := plainTxs(accepted)
	checked := 0
	for _, order := range arrivalOrders(plain, seen, 5040) {
		got, _, _, err := replayLog(plain, seen, ctxEffs, order, entries)
		if errors.Is(err, errInadmissible) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("order %v: %w", order, err)
		}
		if r := rowsString(got, false); r != want {
			return "", fmt.Errorf("arrival order %v gives different rows:\n%s\nversus, in the written order:\n%s", order, r, want)
		}
		checked++
	}
	out = append(out, fmt.Sprintf("arrival orders checked: %d, all give these rows", checked))
	return strings.Join(out, "\n"), nil
}

func plainTxs(txs []ddTx) []Tx {
	plain := make([]Tx, len(txs))
	for i := range txs {
		plain[i] = txs[i].tx
	}
	return plain
}

// checkChanges checks the Change fields against their State.
func checkChanges(res Result) error {
	seen := map[rowID]bool{}
	for _, c := range res.Changes {
		id := rowID{c.Table, c.Key}
		if seen[id] {
			return fmt.Errorf("row %v changed twice", id)
		}
		seen[id] = true
		if c.Live != c.State.Live() {
			return fmt.Errorf("row %v: Live %v but state live %v", id, c.Live, c.State.Live())
		}
		if c.Live != (c.Image != nil) {
			return fmt.Errorf("row %v: Live %v with image %v", id, c.Live, c.Image)
		}
		if c.Live && fmt.Sprint(c.Image) != fmt.Sprint(c.State.Image()) {
			return fmt.Errorf("row %v: image %v, state %v", id, c.Image, c.State.Image())
		}
	}
	return nil
}

func liveWord(live bool) string {
	if live {
		return "live"
	}
	return "dead"
}

func showKey(k string) string {
	vals, err := DecodeKey(k)
	if err != nil {
		return fmt.Sprintf("%q", k)
	}
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = showValue(v)
	}
	return strings.Join(parts, ",")
}

func showValue(v Value) string {
	if v.Null {
		return "NULL"
	}
	return "'" + strings.ReplaceAll(v.Text, "'", "''") + "'"
}

// rowsString prints every row state: liveness, tags (with their offsets if
// withOffsets), cells.
func rowsString(s memStore, withOffsets bool) string {
	var b strings.Builder
	for i, id := range s.ids() {
		r := s[id]
		if i > 0 {
			b.WriteString("\n")
		}
		tags := make([]string, len(r.Tags))
		for i, t := range r.Tags {
			tags[i] = fmt.Sprintf("%s@%d", t.Origin, t.Eff)
			if withOffsets {
				tags[i] += fmt.Sprintf("#%d", t.Offset)
			}
		}
		slices.Sort(tags)
		fmt.Fprintf(&b, "%s %s: %s tags={%s}", id.table, showKey(id.key), liveWord(r.Live()), strings.Join(tags, " "))
		cols := make([]string, 0, len(r.Cells))
		for col := range r.Cells {
			cols = append(cols, col)
		}
		slices.Sort(cols)
		for _, col := range cols {
			c := r.Cells[col]
			from := fmt.Sprintf("%s@%d", c.Origin, c.Eff)
			if c.Eff == 0 {
				from = "old image from " + c.Origin
			}
			fmt.Fprintf(&b, "\n  %s = %s (%s)", col, showValue(c.Value), from)
		}
	}
	return b.String()
}

func parseCase(lines []string) ([]ddTx, error) {
	var txs []ddTx
	count := map[string]int{}
	for _, line := range lines {
		toks, err := tokenize(line)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", line, err)
		}
		if len(toks) == 0 {
			continue
		}
		if toks[0] == "tx" {
			d, err := parseTx(toks, count)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", line, err)
			}
			txs = append(txs, d)
			continue
		}
		if len(txs) == 0 {
			return nil, fmt.Errorf("%q: op before the first tx line", line)
		}
		op, err := parseOp(toks)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", line, err)
		}
		d := &txs[len(txs)-1]
		d.tx.Ops = append(d.tx.Ops, op)
	}
	return txs, nil
}

func parseTx(toks []string, count map[string]int) (ddTx, error) {
	if len(toks) < 2 {
		return ddTx{}, fmt.Errorf("tx needs an origin")
	}
	origin := toks[1]
	count[origin]++
	d := ddTx{label: fmt.Sprintf("%s#%d", origin, count[origin]), tx: Tx{Origin: origin}}
	for _, tok := range toks[2:] {
		k, v, ok := strings.Cut(tok, "=")
		if !ok {
			return d, fmt.Errorf("bad tx argument %q", tok)
		}
		switch k {
		case "time", "now", "ctxeff":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return d, fmt.Errorf("bad %s: %w", k, err)
			}
			switch k {
			case "time":
				d.tx.CommitTime = n
			case "now":
				d.tx.Now = n
			default:
				d.ctxEff = n
			}
		case "ctx":
			if !strings.Contains(v, "#") || strings.Contains(v, ",") {
				return d, fmt.Errorf("bad context %q: a context is a prefix of the log, named by its last transaction (origin#n)", v)
			}
			d.ref = v
		default:
			return d, fmt.Errorf("unknown tx argument %q", k)
		}
	}
	return d, nil
}

func parseOp(toks []string) (Op, error) {
	kinds := map[string]OpKind{"insert": OpInsert, "update": OpUpdate, "delete": OpDelete, "truncate": OpTruncate}
	kind, ok := kinds[toks[0]]
	if !ok {
		return Op{}, fmt.Errorf("unknown op %q", toks[0])
	}
	if len(toks) < 2 {
		return Op{}, fmt.Errorf("%s needs a table", toks[0])
	}
	op := Op{Kind: kind, Table: toks[1]}
	if kind == OpTruncate {
		if len(toks) > 2 {
			return op, fmt.Errorf("truncate takes only a table")
		}
		return op, nil
	}
	if len(toks) < 3 {
		return op, fmt.Errorf("%s needs a key", toks[0])
	}
	var keyVals []Value
	for _, part := range splitOutsideQuotes(toks[2], ',') {
		v, err := parseValue(part)
		if err != nil {
			return op, fmt.Errorf("bad key: %w", err)
		}
		keyVals = append(keyVals, v)
	}
	op.Key = EncodeKey(keyVals)
	for _, tok := range toks[3:] {
		k, v, ok := strings.Cut(tok, "=")
		if !ok {
			return op, fmt.Errorf("bad column %q", tok)
		}
		val, err := parseValue(v)
		if err != nil {
			return op, fmt.Errorf("column %s: %w", k, err)
		}
		if col, isOld := strings.CutPrefix(k, "old."); isOld {
			if op.Old == nil {
				op.Old = map[string]Value{}
			}
			op.Old[col] = val
			continue
		}
		if kind == OpDelete {
			return op, fmt.Errorf("delete writes no column (%s)", k)
		}
		if op.Columns == nil {
			op.Columns = map[string]Value{}
		}
		op.Columns[k] = val
	}
	return op, nil
}

func parseValue(s string) (Value, error) {
	if s == "NULL" {
		return null, nil
	}
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		return txt(strings.ReplaceAll(s[1:len(s)-1], "''", "'")), nil
	}
	if s == "" || strings.ContainsAny(s, "' ") {
		return Value{}, fmt.Errorf("bad value %q: want 'text' or NULL", s)
	}
	return txt(s), nil // a bare word, e.g. a numeric key
}

// splitOutsideQuotes splits s at sep outside single quotes.
func splitOutsideQuotes(s string, sep byte) []string {
	var parts []string
	in, start := false, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\'':
			in = !in // '' inside quotes toggles twice
		case s[i] == sep && !in:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// tokenize splits on spaces outside single quotes; a doubled quote inside
// quotes stands for one quote.
func tokenize(line string) ([]string, error) {
	var toks []string
	var cur strings.Builder
	in, started := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case in && c == '\'' && i+1 < len(line) && line[i+1] == '\'':
			cur.WriteString("''")
			i++
		case c == '\'':
			in = !in
			cur.WriteByte(c)
			started = true
		case c == ' ' && !in:
			if started {
				toks = append(toks, cur.String())
				cur.Reset()
				started = false
			}
		default:
			cur.WriteByte(c)
			started = true
		}
	}
	if in {
		return nil, fmt.Errorf("unterminated quote")
	}
	if started {
		toks = append(toks, cur.String())
	}
	return toks, nil
}
