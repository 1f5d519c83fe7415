package tracing

import (
	"context"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Redacting wraps an exporter so that URLs in exported spans are free of
// what may be secret or personal: queries are dropped, and the process
// token in the Process Controller's exchange path is masked.
func Redacting(exp sdktrace.SpanExporter) sdktrace.SpanExporter { return redacting{exp} }

type redacting struct{ sdktrace.SpanExporter }

func (r redacting) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	out := make([]sdktrace.ReadOnlySpan, len(spans))
	for i, s := range spans {
		out[i] = redactedSpan{s}
	}
	return r.SpanExporter.ExportSpans(ctx, out)
}

// redactedSpan is a span whose URL attributes are redacted.
type redactedSpan struct{ sdktrace.ReadOnlySpan }

func (s redactedSpan) Attributes() []attribute.KeyValue {
	attrs := s.ReadOnlySpan.Attributes()
	out := make([]attribute.KeyValue, 0, len(attrs))
	for _, kv := range attrs {
		switch kv.Key {
		case "url.query":
			continue
		case "url.full", "http.url":
			kv = attribute.String(string(kv.Key), redactURL(kv.Value.AsString()))
		case "http.target", "url.path":
			kv = attribute.String(string(kv.Key), redactURL(kv.Value.AsString()))
		}
		out = append(out, kv)
	}
	return out
}

// redactURL drops the query and masks the segment after /processes/.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparsable]"
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.User = "", false, "", nil
	if i := strings.Index(u.Path, "/processes/"); i >= 0 {
		u.Path, u.RawPath = u.Path[:i]+"/processes/REDACTED", ""
	}
	return u.String()
}
