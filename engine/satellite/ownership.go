// The ownership filter (spec §3.7, DESIGN.md "Satellite side"): a row whose
// electric_user_id is set belongs to that user. Each user gets its own rows
// and the unowned ones; a client write to a row owned by another user, or
// one that would give a row to another user, is refused alone.

package satellite

import (
	"fmt"

	"github.com/electric-sql/electric-go/engine/merge"
)

// OwnerColumn is the column of the ownership filter (spec §3.7).
const OwnerColumn = "electric_user_id"

// owned reports whether a row image belongs to user: no owner column, or an
// owner that is NULL, empty or user (spec §3.7).
func owned(row map[string]merge.Value, user string) bool {
	v, ok := row[OwnerColumn]
	return !ok || v.Null || v.Text == "" || v.Text == user
}

// hasOwner reports whether a row image has an owner, so that whether a
// user gets it depends on the user.
func hasOwner(row map[string]merge.Value) bool {
	v, ok := row[OwnerColumn]
	return ok && !v.Null && v.Text != ""
}

// ownershipRefusal says why op is refused by the ownership rule, "" if it
// is not: a write to a row owned by another user, or one that would give a
// row to another user (DESIGN.md "Satellite side").
func (s *session) ownershipRefusal(op merge.Op) (string, error) {
	if op.Columns != nil && !owned(op.Columns, s.userID) {
		return "row would belong to another user", nil
	}
	cur, err := s.srv.opts.Log.Row(op.Table, op.Key)
	if err != nil {
		return "", fmt.Errorf("reading row %s %q: %w", op.Table, op.Key, err)
	}
	// A deleted row keeps its last image: a write would revive it with
	// the other user's cells it does not overwrite (and that user as owner).
	if cur != nil && !owned(cur.Image(), s.userID) {
		if !cur.Live() {
			return "row belonged to another user (deleted)", nil
		}
		return "row belongs to another user", nil
	}
	return "", nil
}
