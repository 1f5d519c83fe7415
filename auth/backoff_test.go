package auth

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/finproxy/finproxy/finapi"
)

// TestBackoffsBounded: a flood of failing sessions never grows the table
// past maxHeldSessions; entries past their window go first.
func TestBackoffsBounded(t *testing.T) {
	var b backoffs
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	fail := &finapi.Error{Op: "create process", Kind: finapi.ErrInvalidAnswer, Err: errors.New("nonsense")}
	for i := range maxHeldSessions + 5_000 {
		b.failed(fmt.Sprintf("session-%d", i), fail, now)
	}
	if n := b.len(); n >= maxHeldSessions {
		t.Fatalf("table holds %d sessions, want fewer than %d", n, maxHeldSessions)
	}
	// The newest session is held; a success clears it.
	last := fmt.Sprintf("session-%d", maxHeldSessions+4_999)
	if b.held(last, now) == nil {
		t.Errorf("the newest failing session is not held")
	}
	b.succeeded(last)
	if b.held(last, now) != nil {
		t.Errorf("a session is still held after a success")
	}

	// Long after, the old entries are swept before any live one is dropped.
	later := now.Add(time.Hour)
	for i := range 100 {
		b.failed(fmt.Sprintf("later-%d", i), fail, later)
	}
	if n := b.len(); n != 100 && n >= maxHeldSessions {
		t.Errorf("table holds %d sessions after the sweep", n)
	}
	for i := range 100 {
		if b.held(fmt.Sprintf("later-%d", i), later) == nil {
			t.Fatalf("live session later-%d was dropped", i)
		}
	}
}

// TestBackoffsDoubleAndRestart: holds double up to the cap, and a session
// failing again long after starts over at the first hold.
func TestBackoffsDoubleAndRestart(t *testing.T) {
	var b backoffs
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	fail := errors.New("plain")
	var waits []time.Duration
	for range 7 {
		b.failed("s", fail, now)
		h := b.m["s"]
		waits = append(waits, h.wait)
		now = h.until
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	if fmt.Sprint(waits) != fmt.Sprint(want) {
		t.Errorf("holds %v, want %v", waits, want)
	}
	if err := b.held("s", now.Add(-time.Second)); finapi.RetryAfter(err) != time.Second || !errors.Is(err, fail) {
		t.Errorf("held = %v (RetryAfter %v), want the failure with 1s left", err, finapi.RetryAfter(err))
	}
	b.failed("s", fail, now.Add(time.Hour))
	if h := b.m["s"]; h.wait != sessionBackoffFirst {
		t.Errorf("hold after an hour of quiet = %v, want %v", h.wait, sessionBackoffFirst)
	}
}

// TestBackoffsLongHoldForUnknownLoginRefusal: a password grant refused
// with a 400 finproxy does not read as bad credentials holds the session
// for minutes: if it was bad credentials in other words, every attempt
// counts toward finAPI's lock of the user.
func TestBackoffsLongHoldForUnknownLoginRefusal(t *testing.T) {
	var b backoffs
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	err := b.failed("s", &finapi.Error{Op: finapi.OpPasswordGrant, Kind: finapi.ErrRejected, Status: 400, Code: "BAD_REQUEST"}, now)
	if finapi.RetryAfter(err) != refusedLoginHold {
		t.Errorf("hold = %v, want %v", finapi.RetryAfter(err), refusedLoginHold)
	}
	if b.held("s", now.Add(5*time.Minute)) == nil {
		t.Errorf("not held after 5 minutes")
	}
	err = b.failed("t", &finapi.Error{Op: "create user", Kind: finapi.ErrRejected, Status: 400}, now)
	if finapi.RetryAfter(err) != sessionBackoffFirst {
		t.Errorf("another refusal holds %v, want %v", finapi.RetryAfter(err), sessionBackoffFirst)
	}
}
