package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/finproxy/finproxy/config"
	"github.com/finproxy/finproxy/logbuf"
	"github.com/finproxy/finproxy/test/emulator"
	"github.com/finproxy/finproxy/tracing"
)

// TestTracing runs the real wiring with an in-memory span recorder: the
// caller's traceparent is continued, the token acquisition is a child of
// the request span, finAPI's token calls are children of it, and the
// forwarded call carries the trace to finAPI.
func TestTracing(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tracing.Install(sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracing.Redacting(exp))))

	emu := emulator.New(emulator.Config{ClientID: "c", ClientSecret: "s"})
	finapi := httptest.NewServer(emu.Handler())
	defer finapi.Close()
	cfg, err := config.Load([]string{
		"FINPROXY_ACCESS_URL=" + finapi.URL,
		"FINPROXY_CLIENT_ID=c", "FINPROXY_CLIENT_SECRET=s",
		"FINPROXY_IDENTITY_SECRET=tracing-test-identity-secret-0123456789",
	})
	if err != nil {
		t.Fatal(err)
	}
	logOut := logbuf.New(io.Discard, 0)
	defer logOut.Close()
	p, err := build(t.Context(), cfg, zerolog.Nop(), logOut, true)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.proxy)
	defer srv.Close()

	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, _ := http.NewRequest("GET", srv.URL+"/api/v2/accounts?search=private-term", nil)
	req.Header.Set("X-Session-Id", "tracing-session-0123456789")
	req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("request: %v %v", err, resp)
	}
	resp.Body.Close()

	spans := exp.GetSpans().Snapshots()
	byName := func(pred func(sdktrace.ReadOnlySpan) bool) []sdktrace.ReadOnlySpan {
		var out []sdktrace.ReadOnlySpan
		for _, s := range spans {
			if pred(s) {
				out = append(out, s)
			}
		}
		return out
	}
	attr := func(s sdktrace.ReadOnlySpan, key string) string {
		for _, a := range s.Attributes() {
			if string(a.Key) == key {
				return a.Value.String()
			}
		}
		return ""
	}
	server := byName(func(s sdktrace.ReadOnlySpan) bool { return s.SpanKind().String() == "server" })
	if len(server) != 1 {
		t.Fatalf("server spans = %d, want 1 (all: %d)", len(server), len(spans))
	}
	srvSpan := server[0]
	if srvSpan.SpanContext().TraceID().String() != traceID || srvSpan.Parent().SpanID().String() != parentID {
		t.Errorf("server span does not continue the caller's traceparent: trace %s parent %s", srvSpan.SpanContext().TraceID(), srvSpan.Parent().SpanID())
	}
	tok := byName(func(s sdktrace.ReadOnlySpan) bool { return s.Name() == "finproxy.token_acquisition" })
	if len(tok) != 1 || tok[0].Parent().SpanID() != srvSpan.SpanContext().SpanID() {
		t.Fatalf("token acquisition span missing or not a child of the request span")
	}
	clients := byName(func(s sdktrace.ReadOnlySpan) bool { return s.SpanKind().String() == "client" })
	var underToken, underServer int
	var upstream sdktrace.ReadOnlySpan
	for _, c := range clients {
		path := attr(c, "url.full")
		switch c.Parent().SpanID() {
		case tok[0].SpanContext().SpanID():
			underToken++
		case srvSpan.SpanContext().SpanID():
			underServer++
			if strings.HasSuffix(path, "/api/v2/accounts") {
				upstream = c
			}
		default:
			t.Errorf("client span %q (%s) has an unexpected parent", c.Name(), path)
		}
	}
	// Client token, user creation and password grant under the token span.
	if underToken != 3 || underServer != 1 || upstream == nil {
		t.Errorf("client spans: %d under the token acquisition (want 3), %d under the request (want 1, the forwarded call)", underToken, underServer)
	}
	for _, sp := range spans {
		for _, a := range sp.Attributes() {
			if strings.Contains(a.Value.String(), "private-term") {
				t.Errorf("span %q attribute %s holds the query: %s", sp.Name(), a.Key, a.Value.String())
			}
		}
	}
	var sent string
	for _, r := range emu.Requests() {
		if r.Path == "/api/v2/accounts" {
			sent = r.Header.Get("traceparent")
		}
	}
	if upstream != nil && sent != "00-"+traceID+"-"+upstream.SpanContext().SpanID().String()+"-01" {
		t.Errorf("traceparent at finAPI = %q, want the forwarded call's span", sent)
	}
}
