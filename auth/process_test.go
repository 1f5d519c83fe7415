package auth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/finproxy/finproxy/auth"
)

// TestProcessLoginEndToEnd runs the source against a Process Controller
// that answers as finAPI documents.
func TestProcessLoginEndToEnd(t *testing.T) {
	s := testSession(t, "session-process-login")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost:
			var p struct {
				ClientReferences []struct{ ClientReference string }
			}
			json.NewDecoder(r.Body).Decode(&p)
			writeJSON(w, 201, map[string]any{"processes": []map[string]string{{"clientReference": p.ClientReferences[0].ClientReference, "processToken": "pt-9"}}})
		case http.MethodGet:
			writeJSON(w, 200, map[string]string{"accessToken": "access-9"})
		}
	}))
	defer srv.Close()
	clock := newClock()
	login := &auth.ProcessLogin{Client: newClient(t, srv.URL, clock, &sleeps{}), ProcessID: "USER_ONLY", TTL: 10 * time.Minute}
	tok, err := login.SessionToken(context.Background(), s, auth.Token{})
	if err != nil || tok.AccessToken != "access-9" || !tok.Expiry.Equal(t0.Add(10*time.Minute)) {
		t.Errorf("SessionToken = %+v, %v", tok, err)
	}
}
