package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/finproxy/finproxy/config"
)

const (
	testAdminToken = "admin-token-0123456789abcdef-0123456789"
	testDDK        = "5f3a9c2e8b7d41f6a0c3e9b2d4f8a1c7"
)

func TestLoadAdminAndAdoption(t *testing.T) {
	cfg, err := config.Load(environ(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AdminToken != "" || cfg.DataDecryptionKey != "" || cfg.AdoptOnConflict {
		t.Errorf("defaults: admin token set %v, DDK set %v, adopt on conflict %v; want all off",
			cfg.AdminToken != "", cfg.DataDecryptionKey != "", cfg.AdoptOnConflict)
	}

	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	ddkFile := filepath.Join(dir, "ddk")
	os.WriteFile(tokenFile, []byte(testAdminToken+"\n"), 0o600)
	os.WriteFile(ddkFile, []byte(testDDK+"\n"), 0o600)
	cfg, err = config.Load(environ(map[string]string{
		"FINPROXY_ADMIN_TOKEN_FILE":         tokenFile,
		"FINPROXY_DATA_DECRYPTION_KEY_FILE": ddkFile,
		"FINPROXY_ADOPT_ON_CONFLICT":        "true",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AdminToken != testAdminToken || cfg.DataDecryptionKey != testDDK || !cfg.AdoptOnConflict {
		t.Errorf("from files: not read")
	}

	for _, c := range []struct {
		name     string
		set      map[string]string
		wantVars []string
	}{
		{"admin token of 31 bytes", map[string]string{"FINPROXY_ADMIN_TOKEN": strings.Repeat("t", 31)}, []string{"FINPROXY_ADMIN_TOKEN"}},
		{"DDK not hex", map[string]string{"FINPROXY_DATA_DECRYPTION_KEY": "not-a-key-" + testDDK}, []string{"FINPROXY_DATA_DECRYPTION_KEY"}},
		{"DDK odd length", map[string]string{"FINPROXY_DATA_DECRYPTION_KEY": testDDK + "a"}, []string{"FINPROXY_DATA_DECRYPTION_KEY"}},
		{"adopt without DDK", map[string]string{"FINPROXY_ADOPT_ON_CONFLICT": "true"}, []string{"FINPROXY_ADOPT_ON_CONFLICT"}},
		{"adopt in process mode", map[string]string{"FINPROXY_ADOPT_ON_CONFLICT": "true", "FINPROXY_DATA_DECRYPTION_KEY": testDDK, "FINPROXY_MODE": "process"}, []string{"FINPROXY_ADOPT_ON_CONFLICT"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := config.Load(environ(c.set))
			if err == nil {
				t.Fatal("no error")
			}
			var vars []string
			for _, e := range config.Problems(err) {
				var ce *config.Error
				if errors.As(e, &ce) {
					vars = append(vars, ce.Var)
				}
			}
			slices.Sort(vars)
			if !slices.Equal(vars, c.wantVars) {
				t.Errorf("problems name %v, want %v: %v", vars, c.wantVars, err)
			}
			for _, v := range c.set {
				if len(v) >= 16 && strings.Contains(err.Error(), v) {
					t.Errorf("the error prints a secret value: %v", err)
				}
			}
		})
	}
}
