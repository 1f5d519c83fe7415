package metrics

import (
	"context"
	"time"

	"github.com/finproxy/finproxy/auth"
)

// Outcomes of calls to finAPI.
const (
	outcomeOK    = "ok"
	outcomeError = "error"
)

var (
	outcomes       = []string{outcomeOK, outcomeError}
	tokenKinds     = []string{"client", "password", "refresh", "process"}
	rateLimitKinds = []string{"session", "ip", "new_session", "new_session_ip"}
)

// finapiOps maps the ops finapi.Client reports to the op label; any other op
// is "other".
var finapiOps = map[string]string{
	"client_credentials grant": "client_credentials_grant",
	"password grant":           "password_grant",
	"refresh_token grant":      "refresh_token_grant",
	"create user":              "create_user",
	"create user (exists)":     "create_user",
	"verify user":              "verify_user",
	"delete user":              "delete_user",
	"revoke":                   "revoke",
	"create process":           "create_process",
	"exchange process":         "exchange_process",
	"request password change":  "request_password_change",
	"execute password change":  "execute_password_change",
}

// Hooks returns the session cache's hooks (auth.Sessions.Hooks): token
// cache hits and misses, renewals, single-flight waiters and identity
// conflicts. The session and token they are given never become labels.
func (m *Metrics) Hooks() auth.Hooks {
	// Every request looks its token up: the two series are resolved once
	// (WithLabelValues hashes and locks on every call).
	hits, misses := m.cacheLookups.WithLabelValues("hit"), m.cacheLookups.WithLabelValues("miss")
	return auth.Hooks{
		Lookup: func(hit bool) {
			if hit {
				hits.Inc()
				return
			}
			misses.Inc()
		},
		Obtained: func(_ context.Context, _ auth.Session, _ auth.Token, ahead, renewal bool, err error) {
			if !renewal || err != nil {
				return // failures show in finproxy_token_requests_total
			}
			when := "on_demand"
			if ahead {
				when = "ahead"
			}
			m.renewals.WithLabelValues(when).Inc()
		},
		Waiting: func(delta int) {
			m.waiters.Add(float64(delta))
		},
		Conflict: func(context.Context, auth.Session, error) {
			m.conflicts.Inc()
		},
	}
}

// ObserveFinAPI records one call of finproxy to finAPI, retries included
// (finapi.Client.Observe). Token endpoint calls also count in
// finproxy_token_requests_total; a process counts once there, on its
// exchange, or on its creation only when that fails (no exchange follows).
// A user finAPI created counts in finproxy_users_created_total; "create
// user (exists)" (finAPI's 422 ENTITY_EXISTS) does not.
func (m *Metrics) ObserveFinAPI(op string, err error, d time.Duration) {
	outcome := outcomeOK
	if err != nil {
		outcome = outcomeError
	}
	label, ok := finapiOps[op]
	if !ok {
		label = "other"
	}
	m.finapiCalls.WithLabelValues(label, outcome).Inc()
	m.finapiDuration.WithLabelValues(label).Observe(d.Seconds())

	switch op {
	case "client_credentials grant":
		m.tokenRequests.WithLabelValues("client", outcome).Inc()
	case "password grant":
		m.tokenRequests.WithLabelValues("password", outcome).Inc()
	case "refresh_token grant":
		m.tokenRequests.WithLabelValues("refresh", outcome).Inc()
	case "exchange process":
		m.tokenRequests.WithLabelValues("process", outcome).Inc()
	case "create process":
		if err != nil {
			m.tokenRequests.WithLabelValues("process", outcome).Inc()
		}
	case "create user":
		if err == nil {
			m.usersCreated.Inc()
		}
	}
}

// SetSessions sets the source of finproxy_sessions_cached, typically the
// token store's Len. Until it is set, or when f is nil, the gauge is 0.
func (m *Metrics) SetSessions(f func() int) {
	if f == nil {
		m.sessions.Store(nil)
		return
	}
	m.sessions.Store(&f)
}

// RateLimited counts a request the rate limiter refused; kind is
// "session", "ip", "new_session" or "new_session_ip", anything else counts
// as "other".
func (m *Metrics) RateLimited(kind string) {
	switch kind {
	case "session", "ip", "new_session", "new_session_ip":
	default:
		kind = "other"
	}
	m.rateLimited.WithLabelValues(kind).Inc()
}
