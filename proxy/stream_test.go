package proxy

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/finproxy/finproxy/auth"
)

// fixedTokens hands every session the same token.
type fixedTokens struct{}

var _ Tokens = fixedTokens{}

func (fixedTokens) Token(context.Context, auth.Session) (auth.Token, error) {
	return auth.Token{AccessToken: "fixed-token"}, nil
}
func (fixedTokens) Renew(context.Context, auth.Session, auth.Token) (auth.Token, error) {
	return auth.Token{AccessToken: "fixed-token"}, nil
}
func (fixedTokens) Forget(context.Context, auth.Session) error { return nil }
func (fixedTokens) Invalidate(context.Context, auth.Session, auth.Token) error {
	return nil
}

type noLifecycle struct{}

func (noLifecycle) Logout(context.Context, auth.Session) error { return nil }
func (noLifecycle) Delete(context.Context, auth.Session) error { return nil }

// TestEventStreamIsNotBuffered: an upstream's server-sent events reach the
// caller as they are written, not when the stream ends.
func TestEventStreamIsNotBuffered(t *testing.T) {
	release := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.Write([]byte("data: first\n\n"))
		w.(http.Flusher).Flush()
		<-release // the stream stays open until the caller saw the first event
		w.Write([]byte("data: second\n\n"))
	}))
	defer upstream.Close()
	defer close(release)

	u, _ := url.Parse(upstream.URL)
	keys, _ := auth.NewKeys([]byte("stream-test-identity-secret-0123456789"))
	h, err := New(Config{AccessURL: u, Keys: keys, Tokens: fixedTokens{}, Lifecycle: noLifecycle{}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	req, _ := http.NewRequest("GET", srv.URL+"/api/v2/notifications/stream", nil)
	req.Header.Set("X-Session-Id", "stream-session-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(resp.Body).ReadString('\n')
		got <- line
	}()
	select {
	case line := <-got:
		if !strings.HasPrefix(line, "data: first") {
			t.Errorf("first line %q", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first event did not arrive while the stream was open: the response is buffered")
	}
}
