package finapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finproxy/finproxy/finapi"
	"github.com/finproxy/finproxy/finapi/finapitest"
)

const (
	testClientID     = "finproxy-client"
	testClientSecret = "client-secret-must-never-leak-7d1f"
	testPassword     = "user-password-must-never-leak-3c9a"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

type (
	fakeClock = finapitest.Clock
	sleeps    = finapitest.Sleeps
)

var (
	writeJSON   = finapitest.WriteJSON
	finAPIError = finapitest.ErrorMessage
)

func newClock() *fakeClock { return finapitest.NewClock(t0) }

func newClient(t *testing.T, base string, clock *fakeClock, sl *sleeps) *finapi.Client {
	t.Helper()
	return finapitest.NewClient(t, base, testClientID, testClientSecret, clock, sl)
}

func checkNoSecrets(t *testing.T, err error) {
	t.Helper()
	finapitest.CheckNoSecrets(t, err, testClientSecret, testPassword)
}

func TestClientGrants(t *testing.T) {
	tests := []struct {
		name     string
		call     func(ctx context.Context, c *finapi.Client) (finapi.Grant, error)
		wantForm url.Values
	}{
		{
			name: "client_credentials",
			call: func(ctx context.Context, c *finapi.Client) (finapi.Grant, error) { return c.ClientToken(ctx) },
			wantForm: url.Values{
				"grant_type": {"client_credentials"}, "client_id": {testClientID}, "client_secret": {testClientSecret},
			},
		},
		{
			name: "password",
			call: func(ctx context.Context, c *finapi.Client) (finapi.Grant, error) {
				return c.PasswordToken(ctx, "fp-user-1", testPassword+"&=+ ?")
			},
			wantForm: url.Values{
				"grant_type": {"password"}, "client_id": {testClientID}, "client_secret": {testClientSecret},
				"username": {"fp-user-1"}, "password": {testPassword + "&=+ ?"},
			},
		},
		{
			name: "refresh_token",
			call: func(ctx context.Context, c *finapi.Client) (finapi.Grant, error) {
				return c.RefreshToken(ctx, "refresh-1")
			},
			wantForm: url.Values{
				"grant_type": {"refresh_token"}, "client_id": {testClientID}, "client_secret": {testClientSecret},
				"refresh_token": {"refresh-1"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var requests atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				if r.Method != http.MethodPost || r.URL.Path != "/api/v2/oauth/token" {
					t.Errorf("request %s %s, want POST /api/v2/oauth/token", r.Method, r.URL.Path)
				}
				if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
					t.Errorf("Content-Type = %q, want application/x-www-form-urlencoded", ct)
				}
				if r.URL.RawQuery != "" {
					t.Errorf("credentials in the query: %q", r.URL.RawQuery)
				}
				if a := r.Header.Get("Authorization"); a != "" {
					t.Errorf("Authorization = %q, want none (credentials go in the form)", a)
				}
				body, _ := io.ReadAll(r.Body)
				form, err := url.ParseQuery(string(body))
				if err != nil {
					t.Errorf("body %q is not form-encoded: %v", body, err)
				}
				if got, want := form.Encode(), tt.wantForm.Encode(); got != want {
					t.Errorf("form = %s, want %s", got, want)
				}
				writeJSON(w, 200, map[string]any{
					"access_token": "access-1", "token_type": "bearer", "refresh_token": "refresh-2",
					"expires_in": 3600, "scope": "all",
				})
			}))
			defer srv.Close()
			c := newClient(t, srv.URL+"/", newClock(), &sleeps{})

			tok, err := tt.call(context.Background(), c)
			if err != nil {
				t.Fatalf("grant: %v", err)
			}
			want := finapi.Grant{AccessToken: "access-1", RefreshToken: "refresh-2", Issued: t0, Expiry: t0.Add(time.Hour)}
			if tok != want {
				t.Errorf("token = %+v, want %+v", tok, want)
			}
			if n := requests.Load(); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

func TestClientTokenResponses(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		wantExpiry time.Time
		wantKind   error // nil: success
	}{
		{"expires in an hour", 200, `{"access_token":"a","expires_in":3600}`, t0.Add(time.Hour), nil},
		{"expires_in 0 never expires", 200, `{"access_token":"a","expires_in":0}`, time.Time{}, nil},
		{"no expires_in never expires", 200, `{"access_token":"a"}`, time.Time{}, nil},
		{"any 2xx is a success", 201, `{"access_token":"a","expires_in":3600}`, t0.Add(time.Hour), nil},
		{"no access token", 200, `{"token_type":"bearer","expires_in":3600}`, time.Time{}, finapi.ErrInvalidAnswer},
		{"empty access token", 200, `{"access_token":"","expires_in":3600}`, time.Time{}, finapi.ErrInvalidAnswer},
		{"negative expires_in", 200, `{"access_token":"a","expires_in":-5}`, time.Time{}, finapi.ErrInvalidAnswer},
		{"expires_in beyond int32 (found by FuzzGrantAnswer)", 200, `{"access_token":"a","expires_in":9223372036854775807}`, time.Time{}, finapi.ErrInvalidAnswer},
		{"not JSON", 200, `<html>gateway</html>`, time.Time{}, finapi.ErrInvalidAnswer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			tok, err := newClient(t, srv.URL, newClock(), &sleeps{}).ClientToken(context.Background())
			if tt.wantKind != nil {
				if !errors.Is(err, tt.wantKind) {
					t.Errorf("err = %v, want %v", err, tt.wantKind)
				}
				return
			}
			if err != nil {
				t.Fatalf("ClientToken: %v", err)
			}
			if !tok.Expiry.Equal(tt.wantExpiry) || tok.Expiry.IsZero() != tt.wantExpiry.IsZero() {
				t.Errorf("Expiry = %v, want %v", tok.Expiry, tt.wantExpiry)
			}
		})
	}
}

func TestClientRefusals(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     any
		call     func(ctx context.Context, c *finapi.Client) error
		wantKind error
		wantCode string
		// wantBackoff: the refusal backs the whole client off (refused
		// client credentials), so it carries a RetryAfter.
		wantBackoff bool
	}{
		{
			name: "client credentials refused", status: 401,
			body:     map[string]any{"error": "invalid_client", "error_description": "Bad client credentials " + testClientSecret},
			call:     func(ctx context.Context, c *finapi.Client) error { _, err := c.ClientToken(ctx); return err },
			wantKind: finapi.ErrClientRejected, wantCode: "invalid_client", wantBackoff: true,
		},
		{
			name: "401 on a password grant is the client's fault", status: 401,
			body: map[string]any{"error": "unauthorized"},
			call: func(ctx context.Context, c *finapi.Client) error {
				_, err := c.PasswordToken(ctx, "fp-u", testPassword)
				return err
			},
			wantKind: finapi.ErrClientRejected, wantCode: "unauthorized", wantBackoff: true,
		},
		{
			name: "bad user credentials as an OAuth error", status: 400,
			body: map[string]any{"error": "invalid_grant", "error_description": "Bad credentials"},
			call: func(ctx context.Context, c *finapi.Client) error {
				_, err := c.PasswordToken(ctx, "fp-u", testPassword)
				return err
			},
			wantKind: finapi.ErrBadCredentials, wantCode: "invalid_grant",
		},
		{
			name: "bad user credentials as an ErrorMessage", status: 400,
			body: finAPIError("BAD_REQUEST", "Bad user credentials"),
			call: func(ctx context.Context, c *finapi.Client) error {
				_, err := c.PasswordToken(ctx, "fp-u", testPassword)
				return err
			},
			wantKind: finapi.ErrBadCredentials, wantCode: "BAD_REQUEST",
		},
		{
			name: "another 400 on a password grant", status: 400,
			body: finAPIError("BAD_REQUEST", "Missing parameter 'username'"),
			call: func(ctx context.Context, c *finapi.Client) error {
				_, err := c.PasswordToken(ctx, "fp-u", testPassword)
				return err
			},
			wantKind: finapi.ErrRejected, wantCode: "BAD_REQUEST",
		},
		{
			name: "process creation refused", status: 401,
			body: finAPIError("UNAUTHORIZED_ACCESS", "Bad client credentials"),
			call: func(ctx context.Context, c *finapi.Client) error {
				_, err := c.CreateProcess(ctx, "USER_ONLY", "ref")
				return err
			},
			wantKind: finapi.ErrClientRejected, wantCode: "UNAUTHORIZED_ACCESS", wantBackoff: true,
		},
		{
			name: "process exchange refused", status: 404,
			body: finAPIError("UNKNOWN_ENTITY", "no such process"),
			call: func(ctx context.Context, c *finapi.Client) error {
				_, err := c.ExchangeProcess(ctx, "pt", true)
				return err
			},
			wantKind: finapi.ErrRejected, wantCode: "UNKNOWN_ENTITY",
		},
		{
			name: "invalid refresh token", status: 400,
			body:     map[string]any{"error": "invalid_grant"},
			call:     func(ctx context.Context, c *finapi.Client) error { _, err := c.RefreshToken(ctx, "r"); return err },
			wantKind: finapi.ErrRejected, wantCode: "invalid_grant",
		},
		{
			name: "locked user", status: 423,
			body: finAPIError("LOCKED", "user locked"),
			call: func(ctx context.Context, c *finapi.Client) error {
				_, err := c.PasswordToken(ctx, "fp-u", testPassword)
				return err
			},
			wantKind: finapi.ErrIdentityConflict, wantCode: "LOCKED",
		},
		{
			name: "create user refused", status: 422,
			body: finAPIError("BAD_REQUEST", "password "+testPassword+" too weak"),
			call: func(ctx context.Context, c *finapi.Client) error {
				_, err := c.CreateUser(ctx, "client-token", "fp-u", testPassword)
				return err
			},
			wantKind: finapi.ErrRejected, wantCode: "BAD_REQUEST",
		},
		{
			name: "delete busy user", status: 423,
			body:     finAPIError("LOCKED", "busy"),
			call:     func(ctx context.Context, c *finapi.Client) error { return c.DeleteUser(ctx, "user-token") },
			wantKind: finapi.ErrBusy, wantCode: "LOCKED",
		},
		{
			name: "revoke refused", status: 403,
			body:     finAPIError("FORBIDDEN", "no"),
			call:     func(ctx context.Context, c *finapi.Client) error { return c.Revoke(ctx, "client-token", "t", "") },
			wantKind: finapi.ErrRejected, wantCode: "FORBIDDEN",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var requests atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				writeJSON(w, tt.status, tt.body)
			}))
			defer srv.Close()
			err := tt.call(context.Background(), newClient(t, srv.URL, newClock(), &sleeps{}))
			if !errors.Is(err, tt.wantKind) {
				t.Fatalf("err = %v, want kind %v", err, tt.wantKind)
			}
			var e *finapi.Error
			if !errors.As(err, &e) {
				t.Fatalf("err %T is not an *finapi.Error", err)
			}
			if e.Status != tt.status || e.Code != tt.wantCode {
				t.Errorf("Status, Code = %d, %q; want %d, %q", e.Status, e.Code, tt.status, tt.wantCode)
			}
			if (e.RetryAfter > 0) != tt.wantBackoff {
				t.Errorf("RetryAfter = %v; want a back-off: %v", e.RetryAfter, tt.wantBackoff)
			}
			if tt.wantKind == finapi.ErrBadCredentials && !errors.Is(err, finapi.ErrRejected) {
				t.Errorf("bad credentials are not ErrRejected too")
			}
			if tt.wantKind == finapi.ErrRejected && errors.Is(err, finapi.ErrBadCredentials) {
				t.Errorf("a plain refusal counts as bad credentials")
			}
			if n := requests.Load(); n != 1 {
				t.Errorf("a 4xx was sent %d times, want once (no retry)", n)
			}
			checkNoSecrets(t, err)
		})
	}
}

func TestClientRetriesAndBacksOff(t *testing.T) {
	var attempts atomic.Int64
	var healthy atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		if healthy.Load() {
			writeJSON(w, 200, map[string]any{"access_token": "a", "expires_in": 3600})
			return
		}
		writeJSON(w, 503, finAPIError("UNEXPECTED_ERROR", "maintenance"))
	}))
	defer srv.Close()
	clock := newClock()
	sl := &sleeps{}
	c := newClient(t, srv.URL, clock, sl)
	ctx := context.Background()

	_, err := c.ClientToken(ctx)
	if !errors.Is(err, finapi.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	var e *finapi.Error
	if errors.As(err, &e) && (e.Status != 503 || e.Code != "UNEXPECTED_ERROR") {
		t.Errorf("Status, Code = %d, %q; want 503, UNEXPECTED_ERROR", e.Status, e.Code)
	}
	if n := attempts.Load(); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
	if n := sl.Count(); n != 2 {
		t.Errorf("slept %d times between attempts, want 2", n)
	}
	for _, d := range sl.Waits() {
		if d <= 0 || d > time.Second {
			t.Errorf("retry wait %v, want in (0, 1s]", d)
		}
	}
	if ra := finapi.RetryAfter(err); ra != time.Second {
		t.Errorf("RetryAfter = %v, want 1s", ra)
	}
	checkNoSecrets(t, err)

	// Within the back-off: no request at all for the token grants, and
	// the same answer (without the replayed status).
	clock.Set(t0.Add(500 * time.Millisecond))
	calls := []func() error{
		func() error { _, err := c.ClientToken(ctx); return err },
		func() error { _, err := c.PasswordToken(ctx, "fp-u", testPassword); return err },
	}
	for i, call := range calls {
		err := call()
		var e *finapi.Error
		if !errors.Is(err, finapi.ErrUnavailable) || finapi.RetryAfter(err) != 500*time.Millisecond || !errors.As(err, &e) || e.Status != 0 {
			t.Errorf("call %d within back-off: %v (RetryAfter %v), want ErrUnavailable after 500ms", i, err, finapi.RetryAfter(err))
		}
	}
	if n := attempts.Load(); n != 3 {
		t.Errorf("%d attempts after calls within the back-off, want still 3", n)
	}
	// Another class (user creation) is not held back by the token grants'.
	if _, err := c.CreateUser(ctx, "ct", "fp-u", testPassword); !errors.Is(err, finapi.ErrUnavailable) || attempts.Load() != 6 {
		t.Errorf("user creation during the token back-off: %v after %d attempts, want its own 3 attempts", err, attempts.Load())
	}
	attempts.Store(3)

	// After it: tried again, and the back-off doubles.
	clock.Set(t0.Add(time.Second))
	_, err = c.ClientToken(ctx)
	if ra := finapi.RetryAfter(err); !errors.Is(err, finapi.ErrUnavailable) || ra != 2*time.Second {
		t.Errorf("second failure: %v (RetryAfter %v), want ErrUnavailable, 2s", err, ra)
	}
	if n := attempts.Load(); n != 6 {
		t.Errorf("%d attempts, want 6", n)
	}

	// Success resets the back-off.
	healthy.Store(true)
	clock.Set(t0.Add(3 * time.Second))
	if _, err := c.ClientToken(ctx); err != nil {
		t.Fatalf("ClientToken after recovery: %v", err)
	}
	healthy.Store(false)
	_, err = c.ClientToken(ctx)
	if ra := finapi.RetryAfter(err); ra != time.Second {
		t.Errorf("RetryAfter after a success and a new failure = %v, want 1s", ra)
	}
}

func TestClientRetrySucceeds(t *testing.T) {
	var attempts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !strings.Contains(string(body), "grant_type=client_credentials") {
			t.Errorf("attempt %d sent body %q; a retry must resend the form", attempts.Load()+1, body)
		}
		if attempts.Add(1) == 1 {
			w.WriteHeader(502)
			return
		}
		writeJSON(w, 200, map[string]any{"access_token": "a", "expires_in": 60})
	}))
	defer srv.Close()
	tok, err := newClient(t, srv.URL, newClock(), &sleeps{}).ClientToken(context.Background())
	if err != nil || tok.AccessToken != "a" {
		t.Fatalf("ClientToken = %+v, %v; want a after one retry", tok, err)
	}
	if n := attempts.Load(); n != 2 {
		t.Errorf("%d attempts, want 2", n)
	}
}

func TestClientUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // nothing listens there any more
	sl := &sleeps{}
	c := newClient(t, base, newClock(), sl)

	_, err := c.PasswordToken(context.Background(), "fp-u", testPassword)
	if !errors.Is(err, finapi.ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	if ra := finapi.RetryAfter(err); ra <= 0 {
		t.Errorf("RetryAfter = %v, want > 0", ra)
	}
	if n := sl.Count(); n != 2 {
		t.Errorf("slept %d times, want 2 (three attempts)", n)
	}
	var e *finapi.Error
	if errors.As(err, &e) && e.Status != 0 {
		t.Errorf("Status = %d, want 0 (finAPI did not answer)", e.Status)
	}
	checkNoSecrets(t, err)
}

func TestClientDeadlineStopsRetrying(t *testing.T) {
	var attempts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		w.WriteHeader(500)
	}))
	defer srv.Close()
	clock := newClock()
	c := newClient(t, srv.URL, clock, &sleeps{})
	// A deadline (in the injected clock) shorter than any retry wait.
	ctx, cancel := context.WithDeadline(context.Background(), t0.Add(10*time.Millisecond))
	defer cancel()
	ctx = deadlineOnly{ctx}
	_, err := c.ClientToken(ctx)
	if !errors.Is(err, finapi.ErrUnavailable) {
		t.Errorf("err = %v, want ErrUnavailable", err)
	}
	if n := attempts.Load(); n != 1 {
		t.Errorf("%d attempts, want 1 (no retry that cannot finish in time)", n)
	}
}

// deadlineOnly reports its parent's deadline but never ends, so that a
// deadline in the fake clock's past does not cancel the real request.
type deadlineOnly struct{ context.Context }

func (deadlineOnly) Done() <-chan struct{} { return nil }
func (deadlineOnly) Err() error            { return nil }

func TestClientCreateUser(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		body        any
		wantCreated bool
		wantErr     error
	}{
		{"created", 201, map[string]any{"id": "fp-u"}, true, nil},
		{"exists", 422, finAPIError("ENTITY_EXISTS", "User with id fp-u already exists"), false, nil},
		{"other 422", 422, finAPIError("BAD_REQUEST", "invalid id"), false, finapi.ErrRejected},
		{"client token refused", 401, finAPIError("UNAUTHORIZED_ACCESS", "invalid token"), false, finapi.ErrRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || r.URL.Path != "/api/v2/users" {
					t.Errorf("request %s %s, want POST /api/v2/users", r.Method, r.URL.Path)
				}
				if a := r.Header.Get("Authorization"); a != "Bearer client-token" {
					t.Errorf("Authorization = %q, want Bearer client-token", a)
				}
				if ct := r.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q, want application/json", ct)
				}
				var body struct {
					ID       string `json:"id"`
					Password string `json:"password"`
				}
				if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.ID != "fp-u" || body.Password != testPassword {
					t.Errorf("body = %+v, %v; want id fp-u and the password", body, err)
				}
				writeJSON(w, tt.status, tt.body)
			}))
			defer srv.Close()
			created, err := newClient(t, srv.URL, newClock(), &sleeps{}).CreateUser(context.Background(), "client-token", "fp-u", testPassword)
			if created != tt.wantCreated {
				t.Errorf("created = %v, want %v", created, tt.wantCreated)
			}
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			checkNoSecrets(t, err)
		})
	}
}

func TestClientDeleteAndRevoke(t *testing.T) {
	var got []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization")+" "+string(body))
		mu.Unlock()
		w.WriteHeader(200)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, newClock(), &sleeps{})
	ctx := context.Background()
	if err := c.DeleteUser(ctx, "user-token"); err != nil {
		t.Errorf("DeleteUser: %v", err)
	}
	if err := c.Revoke(ctx, "client-token", "refresh-1", ""); err != nil {
		t.Errorf("Revoke: %v", err)
	}
	if err := c.Revoke(ctx, "client-token", "access-1", "access_token"); err != nil {
		t.Errorf("Revoke with hint: %v", err)
	}
	want := []string{
		"DELETE /api/v2/users Bearer user-token ",
		"POST /api/v2/oauth/revoke Bearer client-token token=refresh-1",
		"POST /api/v2/oauth/revoke Bearer client-token token=access-1&token_type_hint=access_token",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestClientBaseURLWithPath(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/finapi/api/v2/oauth/token" {
			t.Errorf("path = %q, want /finapi/api/v2/oauth/token", r.URL.Path)
		}
		writeJSON(w, 200, map[string]any{"access_token": "a"})
	}))
	defer srv.Close()
	if _, err := newClient(t, srv.URL+"/finapi/", newClock(), &sleeps{}).ClientToken(context.Background()); err != nil {
		t.Errorf("ClientToken: %v", err)
	}
}

// TestNonsenseAnswerBacksOffTheClass: a 2xx token answer finproxy cannot
// use comes from whatever stands in front of finAPI and would be the same
// for every session, so the next grant within the back-off is answered
// without asking; after it, finAPI is asked again.
func TestNonsenseAnswerBacksOffTheClass(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		io.WriteString(w, `<html>gateway</html>`)
	}))
	defer srv.Close()
	clock := newClock()
	c := newClient(t, srv.URL, clock, &sleeps{})
	_, err := c.ClientToken(context.Background())
	var e *finapi.Error
	if !errors.As(err, &e) || !errors.Is(err, finapi.ErrInvalidAnswer) || e.RetryAfter <= 0 {
		t.Fatalf("first answer: %v, want ErrInvalidAnswer with a RetryAfter", err)
	}
	if _, err := c.ClientToken(context.Background()); !errors.Is(err, finapi.ErrInvalidAnswer) || requests.Load() != 1 {
		t.Errorf("within the back-off: %v after %d requests, want the held error and 1 request", err, requests.Load())
	}
	clock.Advance(e.RetryAfter)
	c.ClientToken(context.Background())
	if n := requests.Load(); n != 2 {
		t.Errorf("%d requests after the back-off, want 2", n)
	}
}
