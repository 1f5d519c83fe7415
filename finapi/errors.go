package finapi

import (
	"errors"
	"fmt"
	"time"
)

// Kinds of failure that callers branch on. An *Error wraps exactly one.
var (
	// ErrUnreachable: finAPI could not be reached (connection refused,
	// reset, DNS or TLS failure).
	ErrUnreachable = errors.New("finAPI unreachable")
	// ErrInvalidAnswer: finAPI answered a success that finproxy cannot use
	// (not JSON, no or an empty token, a negative expires_in, no entry for
	// the client reference sent).
	ErrInvalidAnswer = errors.New("finAPI answered nonsense")
	// ErrUnavailable: finAPI answered 5xx or 429, did not answer in time,
	// or is backed off after such failures; tokens cannot be had right now.
	ErrUnavailable = errors.New("finAPI token service unavailable")
	// ErrClientRejected: finAPI refused the client credentials.
	ErrClientRejected = errors.New("finAPI refused the client credentials")
	// ErrIdentityConflict: the derived finAPI user exists but refuses the
	// derived password (a changed identity secret, or a user created
	// elsewhere), or is locked.
	ErrIdentityConflict = errors.New("finAPI user exists with another password")
	// ErrProcessExpired: finAPI refused a process token.
	ErrProcessExpired = errors.New("process token expired")
	// ErrBusy: finAPI refused to delete a user while a bank connection is
	// busy (423).
	ErrBusy = errors.New("finAPI user is busy")
	// ErrBadCredentials: finAPI refused a user's password (the password
	// grant's 400 for bad user credentials). It is also ErrRejected.
	ErrBadCredentials = errors.New("finAPI refused the user credentials")
	// ErrRejected: finAPI refused a request for another reason (4xx).
	ErrRejected = errors.New("finAPI refused the request")
)

// Error describes a failed exchange with finAPI.
type Error struct {
	// Op names the exchange, e.g. "password grant".
	Op string
	// Kind is one of the Err* values above.
	Kind error
	// Status is finAPI's HTTP status; 0 if finAPI did not answer.
	Status int
	// Code is finAPI's error code or OAuth error, if any.
	Code string
	// RetryAfter, if positive, is when the caller may try again.
	RetryAfter time.Duration
	// RequestID is the X-Request-Id the call was sent with, so that a
	// log line can be matched with finAPI's support records.
	RequestID string
	// Err is the underlying transport error, if any.
	Err error

	heldBack bool // refused at once during a back-off: no call was made
}

func (e *Error) Error() string {
	s := "finapi: " + e.Op + ": " + e.Kind.Error()
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d", e.Status)
		if e.Code != "" {
			s += " " + e.Code
		}
		s += ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	if e.RequestID != "" {
		s += " [X-Request-Id " + e.RequestID + "]"
	}
	return s
}

// Unwrap returns the kind and the transport error, for errors.Is and As.
// ErrBadCredentials is an ErrRejected too.
func (e *Error) Unwrap() []error {
	errs := []error{e.Kind}
	if e.Kind == ErrBadCredentials {
		errs = append(errs, ErrRejected)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// RetryAfter returns how long err asks the caller to wait, or 0.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// Replayed is a copy of e asking to wait d, as answered again from a
// hold instead of a new call: without the status (code that branches on a
// fresh 401 must not act on a replayed one) and the request id, and not
// reported as a call.
func (e Error) Replayed(d time.Duration) *Error {
	e.RetryAfter, e.Status, e.RequestID, e.heldBack = d, 0, "", true
	return &e
}
