package auth

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracer names the token acquisition spans; a no-op unless tracing is on.
var tracer = otel.Tracer("github.com/finproxy/finproxy/auth")

type aheadKey struct{}

// withAhead marks ctx as a renewal ahead of expiry.
func withAhead(ctx context.Context) context.Context { return context.WithValue(ctx, aheadKey{}, true) }

func isAhead(ctx context.Context) bool { b, _ := ctx.Value(aheadKey{}).(bool); return b }

// observed is a SessionSource decorator that makes every attempt visible:
// a span, the Obtained hook, and an audit event for a token obtained or
// renewed. It adds no behaviour and no time.
type observed struct {
	source SessionSource
	hooks  Hooks
	audit  Audit
}

func (o *observed) SessionToken(ctx context.Context, s Session, prev Token) (Token, error) {
	renewal := prev.AccessToken != "" || prev.RefreshToken != ""
	ahead := isAhead(ctx)
	ctx, span := tracer.Start(ctx, "finproxy.token_acquisition", trace.WithAttributes(
		attribute.Bool("finproxy.renewal", renewal),
		attribute.Bool("finproxy.ahead", ahead),
		attribute.String("finproxy.session", s.Short()),
	))
	t, err := o.source.SessionToken(ctx, s, prev)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
	if o.hooks.Obtained != nil {
		o.hooks.Obtained(ctx, s, t, ahead, renewal, err)
	}
	if err == nil {
		event := EventTokenObtained
		if renewal {
			event = EventTokenRenewed
		}
		o.audit.Record(ctx, event, s, t.UserID)
	}
	return t, err
}
