// Command mobile-backend is an example of an app's own backend in front of
// finproxy. It authenticates its end users its own way, maps each one to
// one finproxy app session and calls finAPI through finproxy; it never
// holds a finAPI token, the client secret or a finAPI password.
//
//	mobile-backend -addr 127.0.0.1:8001 -finproxy http://127.0.0.1:8080 -session-key-file key
//	curl -H 'X-Demo-User: alice' http://127.0.0.1:8001/v1/overview
//
// X-Demo-User stands in for the backend's real authentication (its login
// session, an OAuth token of its identity provider).
package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
	"time"
)

// defaultAddr is where the backend listens by default: beside make demo,
// whose page takes 127.0.0.1:8000.
const defaultAddr = "127.0.0.1:8001"

func main() {
	addr := flag.String("addr", defaultAddr, "listen address")
	finproxy := flag.String("finproxy", "http://127.0.0.1:8080", "finproxy's base URL")
	keyFile := flag.String("session-key-file", "", "file holding the key (at least 32 bytes) that maps users to sessions")
	flag.Parse()
	key, err := os.ReadFile(*keyFile)
	if err != nil || len(strings.TrimSpace(string(key))) < 32 {
		log.Fatalf("mobile-backend: -session-key-file must name a file of at least 32 bytes (%v)", err)
	}
	b := &Backend{FinproxyURL: *finproxy, SessionKey: []byte(strings.TrimSpace(string(key)))}
	srv := &http.Server{Addr: *addr, Handler: b.Handler(), ReadHeaderTimeout: 10 * time.Second}
	log.Printf("mobile-backend: listening on %s, finproxy at %s", *addr, *finproxy)
	log.Fatal(srv.ListenAndServe())
}

// Backend serves the app's end users. Its zero value is not usable: set
// FinproxyURL and SessionKey.
type Backend struct {
	// FinproxyURL is finproxy's base URL, e.g. "http://127.0.0.1:8080".
	// Required.
	FinproxyURL string
	// SessionKey keys the mapping of a user to their app session. Keep it
	// stable: a new key gives every user a new session, and so a new
	// (empty) finAPI user. Required; at least 32 bytes.
	SessionKey []byte
	// Client calls finproxy. If nil, a client with a 30 s timeout is used.
	Client *http.Client
}

// Handler serves GET /v1/overview (the user's bank connections and
// accounts) and POST /v1/logout (ends the user's finAPI login).
func (b *Backend) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/overview", b.overview)
	mux.HandleFunc("POST /v1/logout", b.logout)
	return mux
}

// Session returns the app session of user: the same for the same user, a
// different one for every other, and not guessable without the key (it is
// all finproxy needs to act as that user at finAPI).
func (b *Backend) Session(user string) string {
	mac := hmac.New(sha256.New, b.SessionKey)
	mac.Write([]byte(user))
	return "app-" + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// Overview is what GET /v1/overview answers.
type Overview struct {
	BankConnections []BankConnection `json:"bankConnections"`
	Accounts        []Account        `json:"accounts"`
}

// BankConnection is the part of finAPI's BankConnection the app shows.
type BankConnection struct {
	ID     int64  `json:"id"`
	BankID int64  `json:"bankId"`
	Name   string `json:"name"`
}

// Account is the part of finAPI's Account the app shows.
type Account struct {
	ID      int64   `json:"id"`
	Name    string  `json:"accountName"`
	IBAN    string  `json:"iban"`
	Balance float64 `json:"balance"`
}

func (b *Backend) overview(w http.ResponseWriter, r *http.Request) {
	user := authenticate(r)
	if user == "" {
		http.Error(w, "not logged in", http.StatusUnauthorized)
		return
	}
	var conns struct {
		Connections []BankConnection `json:"connections"`
	}
	var accounts struct {
		Accounts []Account `json:"accounts"`
	}
	// The first call of a new user makes finproxy create their finAPI
	// user and log it in; later calls reuse its cached token.
	if err := b.get(r.Context(), user, "/api/v2/bankConnections", &conns); err != nil {
		fail(w, err)
		return
	}
	if err := b.get(r.Context(), user, "/api/v2/accounts", &accounts); err != nil {
		fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(Overview{BankConnections: conns.Connections, Accounts: accounts.Accounts})
}

func (b *Backend) logout(w http.ResponseWriter, r *http.Request) {
	user := authenticate(r)
	if user == "" {
		http.Error(w, "not logged in", http.StatusUnauthorized)
		return
	}
	resp, err := b.do(r.Context(), http.MethodPost, user, "/proxy/v1/session/logout")
	if err != nil {
		fail(w, err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		fail(w, &finproxyError{resp.StatusCode, resp.Header.Get("X-Finproxy-Error")})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// authenticate stands in for the backend's own authentication.
func authenticate(r *http.Request) string { return r.Header.Get("X-Demo-User") }

// get calls finAPI's path through finproxy as user and decodes the answer.
func (b *Backend) get(ctx context.Context, user, path string, v any) error {
	resp, err := b.do(ctx, http.MethodGet, user, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &finproxyError{resp.StatusCode, resp.Header.Get("X-Finproxy-Error")}
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// do sends a request to finproxy with user's session and no finAPI token:
// finproxy adds it.
func (b *Backend) do(ctx context.Context, method, user, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(b.FinproxyURL, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Session-Id", b.Session(user))
	c := b.Client
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	return c.Do(req)
}

// finproxyError is a non-success answer of finproxy (or of finAPI through
// it); Reason is finproxy's X-Finproxy-Error, empty for finAPI's own.
type finproxyError struct {
	Status int
	Reason string
}

func (e *finproxyError) Error() string {
	return fmt.Sprintf("finproxy answered %d %s", e.Status, e.Reason)
}

// fail answers the app: busy (429, 503) passes through so the app retries
// later; anything else is the backend's 502.
func fail(w http.ResponseWriter, err error) {
	status := http.StatusBadGateway
	var fe *finproxyError
	if errors.As(err, &fe) && (fe.Status == http.StatusTooManyRequests || fe.Status == http.StatusServiceUnavailable) {
		status = fe.Status
	}
	log.Printf("mobile-backend: %v", err)
	http.Error(w, "bank data unavailable, try again later", status)
}
