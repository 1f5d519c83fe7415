package emulator

import "net/http"

// A reply writes a response that was decided while e.mu was held, so that
// writing to a slow client never holds the lock.
type reply func(w http.ResponseWriter, r *http.Request)

// locked runs fn under e.mu and writes its reply after unlocking.
func (e *Emulator) locked(fn func(r *http.Request) reply) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		rep := fn(r)
		e.mu.Unlock()
		rep(w, r)
	}
}

func jsonReply(status int, v any) reply {
	return func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, status, v) }
}

func emptyReply(status int) reply {
	return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) }
}

func (e *Emulator) errReply(status int, code, message string, authContext *string) reply {
	return func(w http.ResponseWriter, r *http.Request) {
		e.writeError(w, r, status, code, message, authContext)
	}
}

func invalidTokenReply(w http.ResponseWriter, _ *http.Request) { writeInvalidToken(w) }
