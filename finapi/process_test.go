package finapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finproxy/finproxy/finapi"
)

// TestCreateProcessAnswers reads the Process Controller's answer as finAPI
// publishes it: a list of processes, one per client reference sent.
func TestCreateProcessAnswers(t *testing.T) {
	const ref = "ref-of-the-session"
	tests := []struct {
		name      string
		status    int
		body      string
		wantToken string
		wantKind  error
	}{
		{"finAPI's own example", 200, `{"processes":[{"clientReference":"ref-of-the-session","processToken":"8f92ec58-b9b9-11ec-8422-0242ac120002"}]}`, "8f92ec58-b9b9-11ec-8422-0242ac120002", nil},
		{"201 is a success too", 201, `{"processes":[{"clientReference":"ref-of-the-session","processToken":"pt-1"}]}`, "pt-1", nil},
		{"the entry of the reference sent among others", 200, `{"processes":[{"clientReference":"other","processToken":"pt-other"},{"clientReference":"ref-of-the-session","processToken":"pt-mine"}]}`, "pt-mine", nil},
		{"the only entry, naming no reference", 200, `{"processes":[{"processToken":"pt-only"}]}`, "pt-only", nil},
		{"extra fields are ignored", 200, `{"processes":[{"clientReference":"ref-of-the-session","processToken":"pt-1","status":"NEW"}],"total":1}`, "pt-1", nil},
		{"only another reference", 200, `{"processes":[{"clientReference":"other","processToken":"pt-other"}]}`, "", finapi.ErrInvalidAnswer},
		{"the old guess: a top-level processToken", 201, `{"processToken":"pt-1"}`, "", finapi.ErrInvalidAnswer},
		{"an empty list", 200, `{"processes":[]}`, "", finapi.ErrInvalidAnswer},
		{"an entry without token", 200, `{"processes":[{"clientReference":"ref-of-the-session"}]}`, "", finapi.ErrInvalidAnswer},
		{"not JSON", 200, `<html>gateway</html>`, "", finapi.ErrInvalidAnswer},
		{"refused: bad credentials", 401, `{"errors":[{"message":"Bad client credentials","code":"UNAUTHORIZED_ACCESS","type":"TECHNICAL"}]}`, "", finapi.ErrClientRejected},
		{"refused without a body", 400, ``, "", finapi.ErrRejected},
		{"5xx", 502, `bad gateway`, "", finapi.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				var params struct {
					ClientID, ClientSecret, ProcessID string
					ClientReferences                  []struct{ ClientReference string }
				}
				if r.Method != http.MethodPost || r.URL.Path != "/api/v1/processes" || r.Header.Get("Authorization") != "" {
					t.Errorf("request %s %s (Authorization %q)", r.Method, r.URL.Path, r.Header.Get("Authorization"))
				}
				if err := json.NewDecoder(r.Body).Decode(&params); err != nil || params.ClientID != testClientID ||
					params.ClientSecret != testClientSecret || params.ProcessID != "USER_ONLY" ||
					len(params.ClientReferences) != 1 || params.ClientReferences[0].ClientReference != ref {
					t.Errorf("create params %+v (%v)", params, err)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			pt, err := newClient(t, srv.URL, newClock(), &sleeps{}).CreateProcess(context.Background(), "USER_ONLY", ref)
			if tt.wantKind != nil {
				if !errors.Is(err, tt.wantKind) {
					t.Errorf("err = %v, want %v", err, tt.wantKind)
				}
			} else if err != nil || pt != tt.wantToken {
				t.Errorf("CreateProcess = %q, %v; want %q", pt, err, tt.wantToken)
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("%d creation requests, want 1 (never retried: a retry could create a second process)", n)
			}
			checkNoSecrets(t, err)
		})
	}
}

func TestExchangeProcessAnswers(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		wantAccess string
		wantKind   error
	}{
		{"finAPI's own example", 200, `{"accessToken":"89e3b64c-b9ba-11ec-8422-0242ac120002"}`, "89e3b64c-b9ba-11ec-8422-0242ac120002", nil},
		{"any 2xx", 201, `{"accessToken":"a"}`, "a", nil},
		{"no accessToken", 200, `{"access_token":"a"}`, "", finapi.ErrInvalidAnswer},
		{"empty accessToken", 200, `{"accessToken":""}`, "", finapi.ErrInvalidAnswer},
		{"not JSON", 200, `ok`, "", finapi.ErrInvalidAnswer},
		{"used up or unknown", 404, `{"errors":[{"message":"not found","code":"UNKNOWN_ENTITY","type":"TECHNICAL"}]}`, "", finapi.ErrRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodGet || r.URL.Path != "/api/v1/processes/pt-1" || r.URL.RawQuery != "invalidate=true" {
					t.Errorf("request %s %s?%s", r.Method, r.URL.Path, r.URL.RawQuery)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			access, err := newClient(t, srv.URL, newClock(), &sleeps{}).ExchangeProcess(context.Background(), "pt-1", true)
			if tt.wantKind != nil {
				if !errors.Is(err, tt.wantKind) {
					t.Errorf("err = %v, want %v", err, tt.wantKind)
				}
				if err != nil && strings.Contains(err.Error(), "pt-1") {
					t.Errorf("error %q names the process token", err)
				}
				return
			}
			if err != nil || access != tt.wantAccess {
				t.Errorf("ExchangeProcess = %q, %v; want %q", access, err, tt.wantAccess)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"0", 0},
		{"-3", 0},
		{"99999999999", 5 * time.Minute}, // capped
		{"Tue, 01 Dec 2026 10:00:30 GMT", 30 * time.Second},
		{"Tuesday, 01-Dec-26 10:01:00 GMT", time.Minute}, // RFC 850, obsolete but allowed
		{"Tue Dec  1 10:00:05 2026", 5 * time.Second},    // asctime
		{"Tue, 01 Dec 2026 09:59:00 GMT", 0},             // in the past
		{"Sat, 01 Dec 2040 10:00:00 GMT", 5 * time.Minute},
		{"soon", 0},
		{"1.5", 0},
		{"+5", 0}, // RFC 9110: DIGIT only
		{"99999999999999999999999", 5 * time.Minute},
	}
	for _, tt := range tests {
		if got := finapi.ParseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestClientHonoursRetryAfterDate: a 429 with Retry-After as an HTTP date
// backs the client off until that date.
func TestClientHonoursRetryAfterDate(t *testing.T) {
	clock := newClock()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", clock.Now().Add(40*time.Second).UTC().Format(http.TimeFormat))
		writeJSON(w, 429, finAPIError("UNEXPECTED_ERROR", "too many requests"))
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, clock, &sleeps{})
	_, err := c.ClientToken(context.Background())
	if !errors.Is(err, finapi.ErrUnavailable) || finapi.RetryAfter(err) != 40*time.Second {
		t.Fatalf("err = %v (RetryAfter %v), want ErrUnavailable for 40s", err, finapi.RetryAfter(err))
	}
	clock.Set(t0.Add(39 * time.Second))
	if _, err := c.ClientToken(context.Background()); finapi.RetryAfter(err) != time.Second {
		t.Errorf("within the date's back-off: %v (RetryAfter %v), want 1s left", err, finapi.RetryAfter(err))
	}
}

// TestClientSendsRequestID: every call carries the X-Request-Id of the
// request it is made for, or a fresh one; errors name it.
func TestClientSendsRequestID(t *testing.T) {
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("X-Request-Id"))
		writeJSON(w, 400, finAPIError("BAD_REQUEST", "no"))
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, newClock(), &sleeps{})
	ctx := finapi.WithRequestID(context.Background(), "caller-request-42")
	_, err := c.PasswordToken(ctx, "fp-u", testPassword)
	var e *finapi.Error
	if !errors.As(err, &e) || e.RequestID != "caller-request-42" {
		t.Errorf("error %v names request id %q, want caller-request-42", err, e.RequestID)
	}
	c.Revoke(ctx, "client-token", "t", "")
	c.ClientToken(context.Background())
	if len(seen) != 3 || seen[0] != "caller-request-42" || seen[1] != "caller-request-42" {
		t.Fatalf("X-Request-Id sent: %q", seen)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(seen[2]) {
		t.Errorf("a call without a request's id sent %q, want a fresh id", seen[2])
	}
}

// TestClientTimeoutIsOneAnswer: a token endpoint slower than the budget is
// ErrUnavailable (503) whether the HTTP client's timeout or the context's
// deadline fires first: one cause, one status.
func TestClientTimeoutIsOneAnswer(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	for _, tt := range []struct {
		name    string
		client  time.Duration // http.Client.Timeout
		context time.Duration
	}{
		{"HTTP client timeout first", 50 * time.Millisecond, time.Minute},
		{"context deadline first", time.Minute, 50 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, srv.URL, newClock(), &sleeps{})
			c.Now, c.Sleep = nil, nil // real time: the deadline must pass
			c.HTTPClient = &http.Client{Timeout: tt.client}
			ctx, cancel := context.WithTimeout(context.Background(), tt.context)
			defer cancel()
			_, err := c.PasswordToken(ctx, "fp-u", testPassword)
			if !errors.Is(err, finapi.ErrUnavailable) || errors.Is(err, finapi.ErrUnreachable) {
				t.Errorf("err = %v, want ErrUnavailable only", err)
			}
		})
	}
}

// TestClientHeldBackCallsAreNotObserved: calls refused at once during a
// back-off reached nobody and do not count as calls to finAPI.
func TestClientHeldBackCallsAreNotObserved(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 401, map[string]any{"error": "invalid_client"})
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, newClock(), &sleeps{})
	var observed []string
	c.Observe = func(op string, err error, _ time.Duration) { observed = append(observed, op) }
	for range 5 {
		if _, err := c.ClientToken(context.Background()); !errors.Is(err, finapi.ErrClientRejected) {
			t.Fatalf("err = %v, want ErrClientRejected every time (one cause, one answer)", err)
		}
	}
	if len(observed) != 1 {
		t.Errorf("observed %d calls (%v), want 1: the others were held back", len(observed), observed)
	}
}

// TestExchangeProcessKeepsTokenWhenAsked: a resumable exchange sends
// invalidate=false.
func TestExchangeProcessKeepsTokenWhenAsked(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/processes/pt-1" || r.URL.RawQuery != "invalidate=false" {
			t.Errorf("request %s?%s, want invalidate=false", r.URL.Path, r.URL.RawQuery)
		}
		io.WriteString(w, `{"accessToken":"access-1"}`)
	}))
	defer srv.Close()
	access, err := newClient(t, srv.URL, newClock(), &sleeps{}).ExchangeProcess(context.Background(), "pt-1", false)
	if err != nil || access != "access-1" {
		t.Errorf("ExchangeProcess = %q, %v", access, err)
	}
}
