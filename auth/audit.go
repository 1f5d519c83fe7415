package auth

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/finproxy/finproxy/finapi"
)

// Audit events: the identity lifecycle, one event each.
const (
	EventUserCreated      = "user_created"
	EventTokenObtained    = "token_obtained"
	EventTokenRenewed     = "token_renewed"
	EventTokenRevoked     = "token_revoked"
	EventUserDeleted      = "user_deleted"
	EventProcessCreated   = "process_created"
	EventIdentityConflict = "identity_conflict"
)

// Audit records identity lifecycle events (which app session made which
// finAPI identity act) on a logger of their own. The zero value records
// nothing. No event holds a token, password or raw session.
type Audit struct {
	// Log receives the events. If nil, nothing is recorded.
	Log *zerolog.Logger
}

// Record writes one audit event for session s and finAPI user userID
// (empty in process mode), with the request id carried by ctx.
func (a Audit) Record(ctx context.Context, event string, s Session, userID string) {
	if a.Log == nil {
		return
	}
	ev := a.Log.Info().Str("event", event).Str("session", s.Short())
	if userID != "" {
		ev = ev.Str("finapi_user", userID)
	}
	if id := finapi.RequestID(ctx); id != "" {
		ev = ev.Str("request_id", id)
	}
	ev.Msg("audit")
}
