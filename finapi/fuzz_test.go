package finapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/finproxy/finproxy/finapi"
	"github.com/finproxy/finproxy/finapi/finapitest"
)

// FuzzParseRetryAfter: any header value gives a wait in [0, 5m]; digits
// give their number of seconds, capped.
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, s := range []string{"", "0", "7", "120", "-3", "+5", "1.5", "99999999999999999999999", "Tue, 01 Dec 2026 10:00:30 GMT",
		"Tuesday, 01-Dec-26 10:01:00 GMT", "Tue Dec  1 10:00:05 2026", "soon"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d := finapi.ParseRetryAfter(v, now)
		if d < 0 || d > 5*time.Minute {
			t.Fatalf("ParseRetryAfter(%q) = %v, outside [0, 5m]", v, d)
		}
		tv := strings.TrimSpace(v)
		if secs, err := strconv.ParseInt(tv, 10, 64); err == nil && tv != "" && strings.Trim(tv, "0123456789") == "" && secs < 300 {
			if d != time.Duration(secs)*time.Second {
				t.Errorf("ParseRetryAfter(%q) = %v, want %ds", v, d, secs)
			}
		}
	})
}

type answerFunc func(*http.Request) (*http.Response, error)

func (f answerFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzGrantAnswer: whatever a 2xx token answer holds, a grant either has an
// access token and an expiry not before its issue (or none), or is an
// error of finproxy's kinds ("finAPI answered nonsense" for a 2xx); it
// never panics and its error never holds the client secret.
func FuzzGrantAnswer(f *testing.F) {
	for _, s := range []string{`{"access_token":"a","expires_in":3600}`, `{"access_token":"","expires_in":3600}`,
		`{"access_token":"a","expires_in":-1}`, `{"access_token":"a","expires_in":1e30}`, `<html>`, `null`, `[]`,
		`{"access_token":5}`, `{"access_token":"a","refresh_token":"r","expires_in":0}`} {
		f.Add(200, s)
	}
	f.Add(201, `{"access_token":"a"}`)
	f.Fuzz(func(t *testing.T, status int, body string) {
		if status < 200 || status > 299 {
			status = 200
		}
		clock := finapitest.NewClock(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
		u, _ := url.Parse("http://finapi.invalid")
		c := &finapi.Client{BaseURL: u, ClientID: "id", ClientSecret: "fuzz-secret-value", Now: clock.Now, Sleep: (&finapitest.Sleeps{}).Sleep,
			HTTPClient: &http.Client{Transport: answerFunc(func(r *http.Request) (*http.Response, error) {
				return &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
			})}}
		g, err := c.ClientToken(context.Background())
		if err != nil {
			if !errors.Is(err, finapi.ErrInvalidAnswer) {
				t.Errorf("a 2xx answer gave %v, want ErrInvalidAnswer", err)
			}
			if strings.Contains(err.Error(), "fuzz-secret-value") {
				t.Errorf("error holds the secret: %v", err)
			}
			return
		}
		if g.AccessToken == "" {
			t.Errorf("a grant without access token from %q", body)
		}
		if !g.Expiry.IsZero() && g.Expiry.Before(g.Issued) {
			t.Errorf("expiry %v before issue %v from %q", g.Expiry, g.Issued, body)
		}
	})
}
