package emulator_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/finproxy/finproxy/test/emulator"
)

// Serve the emulated finAPI Access on a test server, log a pre-created user
// in with the password grant and read its accounts.
func Example() {
	emu := emulator.New(emulator.Config{ClientID: "demo-client", ClientSecret: "demo-secret"})
	srv := httptest.NewServer(emu.Handler())
	defer srv.Close()
	emu.CreateUser("alice", "secret12")

	form := url.Values{
		"grant_type": {"password"}, "client_id": {"demo-client"}, "client_secret": {"demo-secret"},
		"username": {"alice"}, "password": {"secret12"},
	}
	res, err := http.Post(srv.URL+"/api/v2/oauth/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		panic(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v2/accounts", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	res.Body.Close()

	fmt.Println(tok.ExpiresIn, res.StatusCode, emu.Count(emulator.CounterPassword), emu.Count(emulator.CounterData))
	// Output: 3600 200 1 1
}
