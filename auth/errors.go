package auth

import (
	"errors"
	"fmt"
	"time"
)

// Kinds of failure that callers branch on. An *Error wraps exactly one.
var (
	// ErrUnreachable: finAPI could not be reached (connection refused,
	// reset, TLS failure) or answered something that is not finAPI.
	ErrUnreachable = errors.New("finAPI unreachable")
	// ErrUnavailable: finAPI answered 5xx, did not answer in time, or is
	// backed off after such failures; tokens cannot be had right now.
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
	// Err is the underlying transport error, if any.
	Err error
}

func (e *Error) Error() string {
	s := "auth: " + e.Op + ": " + e.Kind.Error()
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
	return s
}

// Unwrap returns the kind and the transport error, for errors.Is and As.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// RetryAfter returns how long err asks the caller to wait, or 0.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}
