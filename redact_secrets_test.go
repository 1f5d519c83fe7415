package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/finproxy/finproxy/config"
	"github.com/finproxy/finproxy/redact"
)

// TestLogSecretsCoverEveryConfiguredSecret: README promises that the
// redaction guard blanks the configured secrets; the admin token and the
// data decryption key are configured secrets too.
func TestLogSecretsCoverEveryConfiguredSecret(t *testing.T) {
	cfg := &config.Config{
		ClientSecret:      "client-secret-DO-NOT-LOG-0123456789",
		IdentitySecret:    "identity-secret-DO-NOT-LOG-0123456789abcdef",
		JWTHMACSecret:     "jwt-hmac-secret-DO-NOT-LOG-0123456789abcdef",
		RedisURL:          "redis://:redis-pass-DO-NOT-LOG@127.0.0.1:6379/0",
		AdminToken:        "admin-token-DO-NOT-LOG-0123456789abcdef0123",
		DataDecryptionKey: "00112233445566778899aabbccddeeff",
	}
	var out bytes.Buffer
	w := redact.NewWriter(&out, logSecrets(cfg)...)
	for _, s := range []string{cfg.ClientSecret, cfg.IdentitySecret, cfg.JWTHMACSecret, "redis-pass-DO-NOT-LOG", cfg.AdminToken, cfg.DataDecryptionKey} {
		out.Reset()
		fmt.Fprintf(w, `{"level":"info","note":"x%sx"}`+"\n", s)
		if strings.Contains(out.String(), s) {
			t.Errorf("a log line keeps a configured secret (%d chars, starting %.3q…): %s", len(s), s, out.String())
		}
	}
}
