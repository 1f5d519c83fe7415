package proxy

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/labstack/echo/v4"
)

// PSU headers finAPI wants for calls that reach a bank, in their
// canonical form: finproxy reads and writes header maps by key directly,
// and a key spelled otherwise would miss the caller's header (and send it
// alongside finproxy's). Header names are case-insensitive on the wire.
const (
	psuIPHeader        = "Psu-Ip-Address"
	psuUserAgentHeader = "Psu-User-Agent"
)

// clientIP finds the real client address: the peer, unless the peer is a
// trusted proxy, in which case X-Forwarded-For is walked from the right,
// skipping trusted hops. A caller that is not trusted cannot choose its IP.
type clientIP struct {
	trusted []netip.Prefix
}

func (c clientIP) isTrusted(a netip.Addr) bool {
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// of returns the client IP of r and whether the direct peer is trusted.
func (c clientIP) of(r *http.Request) (ip string, peerTrusted bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host, false
	}
	if !c.isTrusted(peer.Unmap()) {
		if peer.Is4() {
			return host, false // already canonical: no String() to allocate
		}
		return peer.Unmap().String(), false
	}
	peer = peer.Unmap()
	client := peer
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return client.String(), true // a garbled hop ends the trusted chain
			}
			client = a.Unmap()
			if !c.isTrusted(client) {
				return client.String(), true
			}
		}
	}
	return client.String(), true
}

// edge applies the limits of a public endpoint that do not need a session:
// the client IP (and PSU headers), the per-IP rate limit and the body limit.
func (s *server) edge(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		r := ec.Request()
		if err := s.checkEdge(ec.Response(), r, stateOf(r)); err != nil {
			return err
		}
		return next(ec)
	}
}

// checkEdge is edge's work, for both paths.
func (s *server) checkEdge(w http.ResponseWriter, r *http.Request, st *state) error {
	ip, trusted := s.clientIP.of(r)
	st.clientIP = ip
	// The request's arrival time: no clock read per limit (and none at
	// all for a limit that is off).
	if ok, wait := s.ipLimit.allow(ip, st.start); !ok {
		if s.cfg.Observer != nil {
			s.cfg.Observer.RateLimited("ip")
		}
		return &rateLimitedError{wait: wait}
	}
	// The PSU headers are decided here and set in rewrite, after the
	// reverse proxy removed the hop-by-hop headers: a caller's
	// "Connection: PSU-IP-Address" must not strip them.
	st.psuIP = ip
	if v := r.Header.Get(psuIPHeader); trusted && v != "" {
		st.psuIP = v
	}
	st.psuUserAgent = r.Header.Get(psuUserAgentHeader)
	if st.psuUserAgent == "" {
		st.psuUserAgent = r.UserAgent()
	}
	if max := s.cfg.MaxBodyBytes; max > 0 {
		if r.ContentLength > max {
			return errBodyTooLarge
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, max)
		}
	}
	return nil
}

// sessionLimit applies the per-session rate limit; it runs after the session
// middleware.
func (s *server) sessionLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		if err := s.limitSession(stateOf(ec.Request())); err != nil {
			return err
		}
		return next(ec)
	}
}

// limitSession is sessionLimit's work, for both paths.
func (s *server) limitSession(st *state) error {
	if ok, wait := s.sessionLimits.allow(st.session.ID, st.start); !ok {
		if s.cfg.Observer != nil {
			s.cfg.Observer.RateLimited("session")
		}
		return &rateLimitedError{wait: wait}
	}
	return nil
}

// isBodyTooLarge reports whether err came from the body limit.
func isBodyTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}
