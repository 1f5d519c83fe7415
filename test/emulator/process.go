package emulator

import (
	"net/http"
	"strings"
	"time"
)

// maxExchanges is how often one process token can be exchanged for an access
// token.
const maxExchanges = 10

// A process is one Process Controller process.
type process struct {
	processID   string
	reference   string
	created     time.Time
	exchanges   int
	invalidated bool   // exchanged with invalidate=true
	user        *user  // created on the first exchange
	grant       *grant // the access tokens handed out for this process
}

// createProcessParams is the body of POST /api/v1/processes.
type createProcessParams struct {
	ClientID         string `json:"clientId"`
	ClientSecret     string `json:"clientSecret"`
	ClientReferences []struct {
		ClientReference string `json:"clientReference"`
	} `json:"clientReferences"`
	ProcessID string `json:"processId"`
}

// Processes returns the number of processes created.
func (e *Emulator) Processes() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.nProcesses
}

// serveProcessController routes Process Controller requests (see the
// package doc for the source of each behaviour):
//
//   - POST /api/v1/processes with createProcessParams: 201
//     {"processes":[{"clientReference","processToken"}]}, one process and
//     one entry per client reference sent; 401 UNAUTHORIZED_ACCESS for
//     wrong client credentials, 400 BAD_REQUEST for a malformed body, no
//     client reference or no processId.
//   - GET /api/v1/processes/{processToken}?invalidate=true|false: 200
//     {"accessToken"}. A process token can be exchanged at most 10 times,
//     within ProcessExchangePeriod of its creation, and never after an
//     exchange with invalidate=true; unknown, used-up, expired and
//     invalidated tokens get 404 UNKNOWN_ENTITY alike.
//
// The access token belongs to a user the emulator creates for the process on
// the first exchange, lives ProcessTokenTTL and is handed out again on later
// exchanges while it is valid.
func (e *Emulator) serveProcessController(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case p == "/api/v1/processes":
		if r.Method != http.MethodPost {
			e.writeError(w, r, http.StatusMethodNotAllowed, codeMethodNotAllowed, "Request method '"+r.Method+"' not supported", nil)
			return
		}
		e.locked(e.createProcess)(w, r)
	case strings.HasPrefix(p, "/api/v1/processes/") && !strings.Contains(strings.TrimPrefix(p, "/api/v1/processes/"), "/"):
		if r.Method != http.MethodGet {
			e.writeError(w, r, http.StatusMethodNotAllowed, codeMethodNotAllowed, "Request method '"+r.Method+"' not supported", nil)
			return
		}
		e.locked(e.exchangeProcess)(w, r)
	default:
		e.writeError(w, r, http.StatusNotFound, codeUnknownEntity, "Resource not found", nil)
	}
}

func (e *Emulator) createProcess(r *http.Request) reply {
	var p createProcessParams
	if err := decodeJSON(r.Body, &p); err != nil {
		return e.errReply(http.StatusBadRequest, codeBadRequest, "Malformed request body: "+err.Error(), nil)
	}
	if p.ClientID != e.cfg.ClientID || p.ClientSecret != e.cfg.ClientSecret {
		return e.errReply(http.StatusUnauthorized, codeUnauthorized, "Bad client credentials", nil)
	}
	if p.ProcessID == "" {
		return e.errReply(http.StatusBadRequest, codeBadRequest, "Missing field 'processId'", nil)
	}
	if len(p.ClientReferences) == 0 {
		return e.errReply(http.StatusBadRequest, codeBadRequest, "Missing field 'clientReferences'", nil)
	}
	type entry struct {
		ClientReference string `json:"clientReference"`
		ProcessToken    string `json:"processToken"`
	}
	out := struct {
		Processes []entry `json:"processes"`
	}{Processes: []entry{}}
	for _, ref := range p.ClientReferences {
		token := newUUID()
		e.processes[token] = &process{processID: p.ProcessID, reference: ref.ClientReference, created: e.now()}
		e.nProcesses++
		e.incLocked(CounterProcessCreate)
		out.Processes = append(out.Processes, entry{ClientReference: ref.ClientReference, ProcessToken: token})
	}
	return jsonReply(http.StatusCreated, out)
}

func (e *Emulator) exchangeProcess(r *http.Request) reply {
	var invalidate bool
	switch v := r.URL.Query().Get("invalidate"); v {
	case "", "false":
	case "true":
		invalidate = true
	default:
		return e.errReply(http.StatusBadRequest, codeBadRequest, "Illegal value for 'invalidate': "+v, nil)
	}
	proc := e.processes[strings.TrimPrefix(strings.TrimSuffix(r.URL.Path, "/"), "/api/v1/processes/")]
	if proc == nil || proc.invalidated || proc.exchanges >= maxExchanges || !e.now().Before(proc.created.Add(e.cfg.ProcessExchangePeriod)) {
		return e.errReply(http.StatusNotFound, codeUnknownEntity, "Process not found, used up, expired or invalidated", nil)
	}
	proc.exchanges++
	proc.invalidated = invalidate

	// The process user may have been deleted (DELETE /api/v2/users with the
	// process's token); then the process gets a fresh one.
	if proc.user == nil || e.users[strings.ToLower(proc.user.id)] != proc.user {
		proc.user = e.addUserLocked("process-"+newUUID()[:28], newToken()[:32])
		proc.grant = nil
	}
	if _, live := proc.user.grants[proc.grant]; !live { // revoked, or none yet
		proc.grant = e.newGrantLocked(proc.user, false)
	}
	t := e.liveLatestLocked(proc.grant)
	if t == nil {
		t = e.issueLocked(proc.grant, e.cfg.ProcessTokenTTL)
	}
	e.incLocked(CounterProcessExchange)
	return jsonReply(http.StatusOK, map[string]string{"accessToken": t.value})
}
