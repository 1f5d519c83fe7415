package test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/finproxy/finproxy/admin"
	"github.com/finproxy/finproxy/auth"
	"github.com/finproxy/finproxy/proxy"
	"github.com/finproxy/finproxy/test/emulator"
)

// loadOpenAPI loads and validates docs/openapi.yaml.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("docs/openapi.yaml is not a valid OpenAPI 3 document: %v", err)
	}
	return doc
}

// apiCase is one real request to a running finproxy.
type apiCase struct {
	admin              bool // to the admin listener
	method, path, body string
	session, token     string
	status             int
	invalidRequest     bool // deliberately not what the document allows
}

func TestOpenAPIDescribesTheServer(t *testing.T) {
	doc := loadOpenAPI(t)
	f := newFinAPI(t, emulator.Config{})
	keys := mustKeys(t)
	ok, held, gone := session(t, 1), session(t, 2), session(t, 3)
	f.CreateUser(keys.Session(held).UserID(), foreignPass)
	const foreign = "bob@backend.example"
	f.CreateUser(foreign, foreignPass)
	p := startProxy(t, f, adminEnv(f))
	p.waitReady()
	p.do(request{path: "/api/v2/accounts", session: held}) // an identity-conflict hold
	p.do(request{path: "/api/v2/accounts", session: gone})

	doc.Servers = openapi3.Servers{{URL: "http://" + p.addr}, {URL: "http://" + p.admin}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	sh := func(s string) string { return "/admin/v1/sessions/" + keys.Session(s).Short() }
	cases := []apiCase{
		{method: "POST", path: "/proxy/v1/session", session: ok, status: 200},
		{method: "POST", path: "/proxy/v1/session", status: 401},
		{method: "POST", path: "/proxy/v1/session", session: held, status: 502},
		{method: "POST", path: "/proxy/v1/session/logout", session: ok, status: 204},
		{method: "POST", path: "/proxy/v1/session/logout", status: 401},
		{method: "DELETE", path: "/proxy/v1/session", session: ok, status: 204},
		{method: "DELETE", path: "/proxy/v1/session", status: 401},
		{admin: true, method: "GET", path: "/healthz", status: 200},
		{admin: true, method: "GET", path: "/readyz", status: 200},
		{admin: true, method: "GET", path: "/metrics", status: 200},
		{admin: true, method: "GET", path: sh(held), token: adminToken, status: 200},
		{admin: true, method: "GET", path: sh(gone), token: adminToken, status: 200},
		{admin: true, method: "GET", path: sh(held), status: 401},
		{admin: true, method: "GET", path: "/admin/v1/sessions/ffffffffffff", token: adminToken, status: 404},
		{admin: true, method: "DELETE", path: sh(held) + "/conflict", token: adminToken, status: 200},
		{admin: true, method: "DELETE", path: sh(held) + "/conflict", status: 401},
		{admin: true, method: "POST", path: sh(gone) + "/logout", token: adminToken, status: 204},
		{admin: true, method: "POST", path: sh(gone) + "/logout", status: 401},
		{admin: true, method: "DELETE", path: sh(gone) + "/user", token: adminToken, status: 409},
		{admin: true, method: "POST", path: sh(gone) + "/adopt", token: adminToken, body: `{"userId":"nobody"}`, status: 404},
		{admin: true, method: "POST", path: sh(gone) + "/adopt", token: adminToken, body: `{"userId":"` + foreign + `"}`, status: 200},
		{admin: true, method: "DELETE", path: sh(gone) + "/user", token: adminToken, status: 204},
		{admin: true, method: "POST", path: sh(held) + "/adopt", token: adminToken, body: `{"userId":"a b"}`, status: 400, invalidRequest: true},
		{admin: true, method: "POST", path: sh(held) + "/adopt", status: 401, body: `{"userId":"x"}`},
		{admin: true, method: "POST", path: sh(held), token: adminToken, status: 405, invalidRequest: true},
	}
	exercised := map[string]bool{}
	for _, c := range cases {
		name := c.method + " " + c.path + " " + http.StatusText(c.status)
		host := p.addr
		if c.admin {
			host = p.admin
		}
		var body io.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		req, _ := http.NewRequest(c.method, "http://"+host+c.path, body)
		if c.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if c.session != "" {
			p.sessions = append(p.sessions, c.session)
			req.Header.Set("X-Session-Id", c.session)
		}
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		route, params, err := router.FindRoute(req)
		if err != nil {
			if c.invalidRequest {
				continue // a method the document does not describe: 405 checked in TestOpenAPIDocumentsEveryRoute
			}
			t.Errorf("%s: not in docs/openapi.yaml: %v", name, err)
			continue
		}
		input := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		if err := openapi3filter.ValidateRequest(context.Background(), input); (err != nil) != c.invalidRequest {
			t.Errorf("%s: request validation: %v (deliberately invalid: %v)", name, err, c.invalidRequest)
		}
		if c.body != "" {
			req.Body = io.NopCloser(strings.NewReader(c.body)) // read by the validation
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		respBody, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d: %s", name, resp.StatusCode, c.status, respBody)
			continue
		}
		err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
			RequestValidationInput: input, Status: resp.StatusCode, Header: resp.Header,
			Body:    io.NopCloser(bytes.NewReader(respBody)),
			Options: &openapi3filter.Options{IncludeResponseStatus: true},
		})
		if err != nil {
			t.Errorf("%s: the response does not match docs/openapi.yaml: %v\n%s", name, err, respBody)
		}
		exercised[route.Operation.OperationID] = true
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if !exercised[op.OperationID] {
				t.Errorf("%s %s (%s) documented but not exercised against the server", method, path, op.OperationID)
			}
		}
	}
	assertAdminSecrets(t, p, f)
}

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	documented := func(method, path string) bool {
		item := doc.Paths.Find(path)
		return item != nil && item.GetOperation(method) != nil
	}
	for _, r := range admin.Routes() {
		method, path, _ := strings.Cut(r, " ")
		if !documented(method, path) {
			t.Errorf("admin route %s is not in docs/openapi.yaml", r)
		}
	}

	keys := mustKeys(t)
	u, _ := url.Parse("http://127.0.0.1:1")
	h, err := proxy.New(proxy.Config{AccessURL: u, Keys: keys, Tokens: &auth.Sessions{}, Lifecycle: &auth.Lifecycle{}})
	if err != nil {
		t.Fatal(err)
	}
	f := newFinAPI(t, emulator.Config{})
	p := startProxy(t, f, adminEnv(f))
	var paths []string
	for _, r := range h.Routes() {
		method, path, _ := strings.Cut(r, " ")
		paths = append(paths, path)
		if documented(method, path) {
			continue
		}
		if doc.Paths.Find(path) == nil {
			t.Errorf("route %s is not in docs/openapi.yaml", r)
			continue
		}
		// Registered for the 405 of methods the path does not serve:
		// the document describes the ones it serves.
		if status := rawStatus(t, p.addr, method, path, session(t, 9)); status != http.StatusMethodNotAllowed {
			t.Errorf("%s: undocumented method answers %d, want 405", r, status)
		}
	}
	for _, want := range []string{"/proxy/v1/session", "/proxy/v1/session/logout"} {
		if !slices.Contains(paths, want) {
			t.Errorf("Routes() lacks %s; the route test sees nothing", want)
		}
	}
}

// rawStatus sends "method path" over a plain connection (CONNECT and
// TRACE included, which http.Client does not send with a path) and returns
// the status.
func rawStatus(t *testing.T, addr, method, path, session string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, method+" "+path+" HTTP/1.1\r\nHost: "+addr+"\r\nX-Session-Id: "+session+"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
