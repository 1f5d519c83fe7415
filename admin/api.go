package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/finproxy/finproxy/apierror"
	"github.com/finproxy/finproxy/auth"
	"github.com/finproxy/finproxy/finapi"
)

// APIPrefix starts every path of the admin API.
const APIPrefix = "/admin/v1/"

// MinTokenBytes is the shortest admin token accepted.
const MinTokenBytes = 32

// maxBodyBytes bounds an admin request's body.
const maxBodyBytes = 4 << 10

// APIConfig configures the admin API.
type APIConfig struct {
	// Token is the bearer token operators send (FINPROXY_ADMIN_TOKEN).
	// Required; at least MinTokenBytes.
	Token string
	// Operator carries out the actions. Required.
	Operator *auth.Operator
}

// Errors of the admin API; with auth's and finapi's they map to statuses in
// apiTable alone.
var (
	errUnauthorized = errors.New("admin: missing or wrong admin token")
	errNoRoute      = errors.New("admin: no such endpoint")
	errMethod       = errors.New("admin: method not allowed")
	errBadBody      = errors.New("admin: malformed request body")
	errBodyTooLarge = errors.New("admin: request body too large")
)

// apiProblem is one row of apiTable: apierror.Problem's fields, declared
// here so that the rows can stay positional, converted when written.
type apiProblem struct {
	Status  int
	Code    string // finAPI ErrorCode
	Reason  string // X-Finproxy-Error
	Message string
}

// apiTable maps every error of the admin API to its answer, the only place
// where that is decided.
var apiTable = []struct {
	err error
	apiProblem
}{
	{errUnauthorized, apiProblem{401, "UNAUTHORIZED_ACCESS", "admin_unauthorized", "Send the admin token: Authorization: Bearer <FINPROXY_ADMIN_TOKEN>"}},
	{errNoRoute, apiProblem{404, "UNKNOWN_ENTITY", "no_route", "No such endpoint"}},
	{auth.ErrNoSession, apiProblem{404, "UNKNOWN_ENTITY", "no_session", "No session of that hash is known to the store"}},
	{finapi.ErrUnknownUser, apiProblem{404, "UNKNOWN_ENTITY", "unknown_user", "finAPI knows no user of that id"}},
	{errMethod, apiProblem{405, "METHOD_NOT_ALLOWED", "method_not_allowed", "Method not allowed"}},
	{errBadBody, apiProblem{400, "BAD_REQUEST", "invalid_body", `The body must be one JSON object {"userId": "<finAPI user id>"} and nothing else`}},
	{errBodyTooLarge, apiProblem{413, "BAD_REQUEST", "body_too_large", "Request body too large"}},
	{auth.ErrAdoptionOff, apiProblem{409, "BAD_REQUEST", "adoption_off", "Adoption needs FINPROXY_DATA_DECRYPTION_KEY (user mode)"}},
	{auth.ErrNotDerivable, apiProblem{409, "BAD_REQUEST", "not_derivable", "The session holds no token and no adopted user; only its own requests can derive its finAPI user"}},
	{finapi.ErrBusy, apiProblem{423, "LOCKED", "user_busy", "The finAPI user cannot be deleted while a bank connection is busy; try again later"}},
	{finapi.ErrIdentityConflict, apiProblem{502, "UNEXPECTED_ERROR", "identity_conflict", "finAPI refuses the session's user"}},
	{finapi.ErrClientRejected, apiProblem{502, "UNEXPECTED_ERROR", "token_refused", "finAPI refused finproxy's client credentials"}},
	{finapi.ErrUnavailable, apiProblem{503, "UNEXPECTED_ERROR", "token_unavailable", "finAPI cannot be used right now; try again later"}},
	{finapi.ErrUnreachable, apiProblem{502, "UNEXPECTED_ERROR", "upstream_unavailable", "finAPI is unreachable"}},
	{finapi.ErrInvalidAnswer, apiProblem{502, "UNEXPECTED_ERROR", "upstream_invalid", "finAPI answered something finproxy cannot use (for adoption: a passwordChangeToken that does not decrypt with the data decryption key)"}},
	{finapi.ErrRejected, apiProblem{502, "UNEXPECTED_ERROR", "finapi_refused", "finAPI refused the request"}},
}

var apiInternal = apiProblem{500, "UNEXPECTED_ERROR", "internal", "Internal error"}

func classifyAPI(err error) apiProblem {
	for _, row := range apiTable {
		if errors.Is(err, row.err) {
			return row.apiProblem
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return apiProblem{504, "UNEXPECTED_ERROR", "upstream_timeout", "finAPI did not answer in time"}
	}
	return apiInternal
}

// A route is one endpoint shape: the action after the session hash ("" for
// the session itself) and its method.
type route struct {
	method, action string
}

// routes lists every endpoint of the admin API under
// /admin/v1/sessions/{hash}[/action]; Routes exposes it for the test that
// every route is documented.
var routes = []route{
	{http.MethodGet, ""},
	{http.MethodDelete, "conflict"},
	{http.MethodPost, "logout"},
	{http.MethodDelete, "user"},
	{http.MethodPost, "adopt"},
}

// Routes returns every "METHOD path" of the admin API, the hash written
// {hash} as in OpenAPI.
func Routes() []string {
	var out []string
	for _, r := range routes {
		p := APIPrefix + "sessions/{hash}"
		if r.action != "" {
			p += "/" + r.action
		}
		out = append(out, r.method+" "+p)
	}
	return out
}

// api is the admin API handler.
type api struct {
	tokenSum [sha256.Size]byte
	op       *auth.Operator
}

// NewAPI returns the admin API handler for APIPrefix, or an error for a
// configuration it cannot serve.
func NewAPI(c APIConfig) (http.Handler, error) {
	if len(c.Token) < MinTokenBytes {
		return nil, errors.New("admin: FINPROXY_ADMIN_TOKEN must be at least 32 bytes")
	}
	if c.Operator == nil {
		return nil, errors.New("admin: the admin API needs an Operator")
	}
	return &api{tokenSum: sha256.Sum256([]byte(c.Token)), op: c.Operator}, nil
}

// authorized compares the bearer token in constant time: both sides are
// hashed first, so neither the comparison nor the lengths leak.
func (a *api) authorized(r *http.Request) bool {
	scheme, value, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(value)))
	return subtle.ConstantTimeCompare(got[:], a.tokenSum[:]) == 1
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("X-Request-Id")
	if id == "" || len(id) > 255 {
		id = finapi.NewRequestID()
	}
	w.Header().Set("X-Request-Id", id)
	ctx := finapi.WithRequestID(r.Context(), id)
	hash, action, ok := parsePath(r.URL.Path)
	refuse := func(err error) {
		a.op.Refused(ctx, classifyAPI(err).Reason, hash)
		writeAPIError(w, r, err)
	}
	if !a.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="finproxy admin"`)
		refuse(errUnauthorized)
		return
	}
	if !ok {
		refuse(errNoRoute)
		return
	}
	var allowed []string
	for _, rt := range routes {
		if rt.action == action {
			allowed = append(allowed, rt.method)
		}
	}
	if len(allowed) == 0 {
		refuse(errNoRoute)
		return
	}
	if !slices.Contains(allowed, r.Method) {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		refuse(errMethod)
		return
	}
	var (
		info auth.SessionInfo
		err  error
	)
	switch action {
	case "":
		info, err = a.op.Lookup(ctx, hash)
	case "conflict":
		info, err = a.op.ClearConflict(ctx, hash)
	case "logout":
		if err = a.op.Logout(ctx, hash); err == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	case "user":
		if err = a.op.DeleteUser(ctx, hash); err == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	case "adopt":
		var userID string
		if userID, err = readAdopt(w, r); err != nil {
			refuse(err)
			return
		}
		info, err = a.op.Adopt(ctx, hash, userID)
	}
	if err != nil {
		writeAPIError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// parsePath splits /admin/v1/sessions/{hash}[/action].
func parsePath(p string) (hash, action string, ok bool) {
	rest, ok := strings.CutPrefix(p, APIPrefix+"sessions/")
	if !ok || rest == "" {
		return "", "", false
	}
	hash, action, _ = strings.Cut(rest, "/")
	if hash == "" || strings.Contains(action, "/") {
		return "", "", false
	}
	return hash, action, true
}

// userIDPattern is finAPI's user id: at most 36 of [a-zA-Z0-9-_.+@].
var userIDPattern = regexp.MustCompile(`^[a-zA-Z0-9\-_.+@]{1,36}$`)

// readAdopt decodes the adopt body strictly: one object with userId alone.
func readAdopt(w http.ResponseWriter, r *http.Request) (string, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return "", errBodyTooLarge
	case err != nil:
		return "", errBadBody
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	var in struct {
		UserID *string `json:"userId"`
	}
	if err := dec.Decode(&in); err != nil || in.UserID == nil || !userIDPattern.MatchString(*in.UserID) {
		return "", errBadBody
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", errBadBody
	}
	return *in.UserID, nil
}

// offAPI answers every admin API path while the API is off: 404, as for a
// path that does not exist.
func offAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Request-Id", finapi.NewRequestID())
	writeAPIError(w, r, errNoRoute)
}

// writeAPIError answers err in finAPI's ErrorMessage shape, as the proxy
// listener answers its own errors.
func writeAPIError(w http.ResponseWriter, r *http.Request, err error) {
	apierror.Write(w, r, apierror.Problem(classifyAPI(err)), finapi.RetryAfter(err))
}
