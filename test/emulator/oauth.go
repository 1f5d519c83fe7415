package emulator

import (
	"mime"
	"net/http"
	"strings"
	"time"
)

// A grant is one authorization grant: the client's, one password login of a
// user (with its refresh token) or one process. Revoking a grant revokes its
// refresh token and every access token issued on it.
type grant struct {
	user    *user                   // nil for the client grant
	refresh string                  // "" when the grant has no refresh token
	access  map[string]*accessToken // live access tokens issued on this grant
	latest  *accessToken            // the token handed out again for the same credentials
}

// An accessToken is one issued access token.
type accessToken struct {
	value   string
	grant   *grant
	expires time.Time
}

func (t *accessToken) user() *user { return t.grant.user }

// tokenResponse is finAPI's AccessToken schema.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	RefreshToken string `json:"refresh_token,omitempty"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope"`
}

// newGrantLocked starts a grant for u (nil: the client), with a refresh
// token when refresh is set.
func (e *Emulator) newGrantLocked(u *user, refresh bool) *grant {
	g := &grant{user: u, access: map[string]*accessToken{}}
	if refresh {
		g.refresh = newToken()
		e.refresh[g.refresh] = g
	}
	if u != nil {
		u.grants[g] = struct{}{}
	}
	return g
}

// issueLocked issues a new access token on g, valid for ttl.
func (e *Emulator) issueLocked(g *grant, ttl time.Duration) *accessToken {
	t := &accessToken{value: newToken(), grant: g, expires: e.now().Add(ttl)}
	g.access[t.value] = t
	g.latest = t
	e.tokens[t.value] = t
	return t
}

// lookupLocked returns the live access token with value v, or nil. Expired
// tokens are dropped on the way.
func (e *Emulator) lookupLocked(v string) *accessToken {
	t := e.tokens[v]
	if t == nil {
		return nil
	}
	if !e.now().Before(t.expires) {
		e.revokeAccessLocked(t)
		return nil
	}
	return t
}

// liveLatestLocked returns g's latest access token if it is still valid.
func (e *Emulator) liveLatestLocked(g *grant) *accessToken {
	if g == nil || g.latest == nil {
		return nil
	}
	return e.lookupLocked(g.latest.value)
}

// revokeAccessLocked invalidates one access token; its grant stays.
func (e *Emulator) revokeAccessLocked(t *accessToken) {
	delete(e.tokens, t.value)
	delete(t.grant.access, t.value)
	if t.grant.latest == t {
		t.grant.latest = nil
	}
}

// revokeGrantLocked invalidates g's refresh token and all its access tokens.
func (e *Emulator) revokeGrantLocked(g *grant) {
	for _, t := range g.access {
		e.revokeAccessLocked(t)
	}
	if g.refresh != "" {
		delete(e.refresh, g.refresh)
	}
	if u := g.user; u != nil {
		delete(u.grants, g)
		if u.current == g {
			u.current = nil
		}
	}
	if e.clientGrant == g {
		e.clientGrant = nil
	}
}

// revokeUserLocked invalidates every token of u.
func (e *Emulator) revokeUserLocked(u *user) {
	for g := range u.grants {
		e.revokeGrantLocked(g)
	}
}

// tokenReplyLocked describes t as finAPI's AccessToken; expires_in is the
// remaining lifetime, so a token handed out again counts down. The refresh
// token goes with password grants only: AccessToken.refresh_token is "only
// set in case of grant_type='password'".
func (e *Emulator) tokenReplyLocked(t *accessToken, withRefresh bool) reply {
	refresh := ""
	if withRefresh {
		refresh = t.grant.refresh
	}
	return jsonReply(http.StatusOK, tokenResponse{
		AccessToken:  t.value,
		TokenType:    "bearer",
		RefreshToken: refresh,
		ExpiresIn:    int64((t.expires.Sub(e.now()) + time.Second - 1) / time.Second), // rounded up: a fresh token says TTL
		Scope:        "all",
	})
}

// serveToken is POST /api/v2/oauth/token (and /oauth/token).
func (e *Emulator) serveToken(w http.ResponseWriter, r *http.Request) {
	e.locked(e.token)(w, r)
}

func (e *Emulator) token(r *http.Request) reply {
	if e.down {
		return e.errReply(http.StatusServiceUnavailable, codeUnexpected, "finAPI is currently unavailable due to maintenance", nil)
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		return e.errReply(http.StatusBadRequest, codeBadRequest, "The Content-Type of the request must be 'application/x-www-form-urlencoded'", nil)
	}
	if err := r.ParseForm(); err != nil {
		return e.errReply(http.StatusBadRequest, codeBadRequest, "Malformed form body", nil)
	}
	id, secret := r.Form.Get("client_id"), r.Form.Get("client_secret")
	if id == "" && secret == "" {
		id, secret, _ = r.BasicAuth()
	}
	other := id != e.cfg.ClientID && e.cfg.OtherClients[id] != "" && e.cfg.OtherClients[id] == secret && r.Form.Get("grant_type") == "password"
	if (id != e.cfg.ClientID || secret != e.cfg.ClientSecret) && !other {
		e.incLocked(CounterInvalidClient)
		return func(w http.ResponseWriter, _ *http.Request) {
			writeBadCredentials(w, "invalid_client", "Bad client credentials")
		}
	}

	switch r.Form.Get("grant_type") {
	case "client_credentials":
		t := e.liveLatestLocked(e.clientGrant)
		if t == nil {
			if e.clientGrant == nil {
				e.clientGrant = e.newGrantLocked(nil, false)
			}
			t = e.issueLocked(e.clientGrant, e.cfg.ClientTokenTTL)
		}
		e.incLocked(CounterClientCredentials)
		return e.tokenReplyLocked(t, false)

	case "password":
		name, password := r.Form.Get("username"), r.Form.Get("password")
		if name == "" || password == "" {
			return e.errReply(http.StatusBadRequest, codeBadRequest, "Missing parameter 'username' or 'password'", nil)
		}
		u := e.users[strings.ToLower(name)]
		if u != nil && u.locked {
			e.incLocked(CounterPasswordLocked)
			return e.errReply(http.StatusLocked, codeLocked, "User is locked", nil)
		}
		if u == nil || u.password != password {
			e.incLocked(CounterPasswordFailed)
			if u != nil {
				u.failed++
				if u.failed >= e.cfg.MaxLoginAttempts {
					u.locked = true
					e.revokeUserLocked(u) // finAPI invalidates a locked user's tokens
				}
			}
			return e.errReply(http.StatusBadRequest, codeBadRequest, "Bad user credentials", nil)
		}
		if !u.verified {
			e.incLocked(CounterPasswordUnverified)
			return e.errReply(http.StatusForbidden, codeUserNotVerified, "User is not verified", nil)
		}
		u.failed = 0 // maxUserLoginAttempts: reset when a token is retrieved
		if other {
			return e.otherClientTokenLocked(u, id)
		}
		t := e.liveLatestLocked(u.current)
		if t == nil {
			if u.current == nil {
				u.current = e.newGrantLocked(u, true)
			}
			t = e.issueLocked(u.current, e.cfg.UserTokenTTL)
		}
		e.incLocked(CounterPassword)
		return e.tokenReplyLocked(t, true)

	case "refresh_token":
		g := e.refresh[r.Form.Get("refresh_token")]
		if g == nil {
			return e.errReply(http.StatusBadRequest, codeBadRequest, "Invalid refresh token", nil)
		}
		if e.cfg.RefreshRevokesOld {
			for _, old := range g.access {
				e.revokeAccessLocked(old)
			}
		}
		t := e.issueLocked(g, e.cfg.UserTokenTTL)
		e.incLocked(CounterRefreshToken)
		return e.tokenReplyLocked(t, false)

	case "":
		return e.errReply(http.StatusBadRequest, codeBadRequest, "Missing parameter 'grant_type'", nil)
	default:
		return e.errReply(http.StatusBadRequest, codeBadRequest, "Unsupported grant type", nil)
	}
}

// serveRevoke is POST /api/v2/oauth/revoke (and /oauth/revoke). It needs the
// client's access token and answers 200 for unknown tokens too.
func (e *Emulator) serveRevoke(w http.ResponseWriter, r *http.Request) {
	e.locked(e.revoke)(w, r)
}

func (e *Emulator) revoke(r *http.Request) reply {
	caller, rep := e.authorizeLocked(r, roleClient, false)
	if rep != nil {
		return rep
	}
	if err := r.ParseForm(); err != nil {
		return e.errReply(http.StatusBadRequest, codeBadRequest, "Malformed form body", e.authContext(caller))
	}
	value, hint := r.Form.Get("token"), r.Form.Get("token_type_hint")
	if value == "" {
		return e.errReply(http.StatusBadRequest, codeBadRequest, "Missing parameter 'token'", e.authContext(caller))
	}
	switch hint {
	case "", "access_token", "refresh_token":
	default:
		return e.errReply(http.StatusBadRequest, codeBadRequest, "Unsupported token_type_hint '"+hint+"'", e.authContext(caller))
	}
	if t := e.tokens[value]; t != nil {
		if hint == "access_token" {
			e.revokeAccessLocked(t)
		} else {
			e.revokeGrantLocked(t.grant)
		}
	} else if g := e.refresh[value]; g != nil {
		e.revokeGrantLocked(g)
	}
	e.incLocked(CounterRevoke)
	return emptyReply(http.StatusOK)
}

// A role is what kind of access token an endpoint accepts.
type role int

const (
	roleClient role = iota + 1
	roleUser
	roleAny
)

// authorizeLocked resolves r's bearer token and checks that it has role
// want. rejectable marks user endpoints, where RejectNextUserToken applies.
// On failure it returns the reply to send.
func (e *Emulator) authorizeLocked(r *http.Request, want role, rejectable bool) (*accessToken, reply) {
	auth := r.Header.Get("Authorization")
	scheme, value, _ := strings.Cut(auth, " ")
	var t *accessToken
	if strings.EqualFold(scheme, "Bearer") && value != "" {
		t = e.lookupLocked(strings.TrimSpace(value))
	}
	if t == nil {
		return nil, invalidTokenReply
	}
	isUser := t.user() != nil
	if (want == roleClient && isUser) || (want == roleUser && !isUser) {
		return nil, e.errReply(http.StatusForbidden, codeUnauthorized, "Access is denied", e.authContext(t))
	}
	if rejectable && isUser && e.rejectUser > 0 {
		e.rejectUser--
		e.revokeAccessLocked(t)
		return nil, invalidTokenReply
	}
	return t, nil
}

// authContext is ErrorMessage.authContext: "<client id>" for the client,
// "<client id>/<user id>" for a user.
func (e *Emulator) authContext(t *accessToken) *string {
	if t == nil {
		return nil
	}
	s := e.cfg.ClientID
	if u := t.user(); u != nil {
		s += "/" + u.id
	}
	return &s
}

// otherClientTokenLocked answers the password grant of u for one of
// Config.OtherClients: a grant of its own per client, so that revoking it
// is visible apart from finproxy's.
func (e *Emulator) otherClientTokenLocked(u *user, client string) reply {
	g := u.other[client]
	if _, live := u.grants[g]; g == nil || !live {
		g = e.newGrantLocked(u, true)
		if u.other == nil {
			u.other = map[string]*grant{}
		}
		u.other[client] = g
	}
	t := e.liveLatestLocked(g)
	if t == nil {
		t = e.issueLocked(g, e.cfg.UserTokenTTL)
	}
	e.incLocked(CounterPassword)
	return e.tokenReplyLocked(t, true)
}
