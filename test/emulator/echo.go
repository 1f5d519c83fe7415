package emulator

import (
	"io"
	"net/http"
)

// echoResponse describes a request as the echo upstream received it.
type echoResponse struct {
	Method      string              `json:"method"`
	Host        string              `json:"host"`
	Path        string              `json:"path"`
	RawPath     string              `json:"rawPath"`
	EscapedPath string              `json:"escapedPath"`
	RawQuery    string              `json:"rawQuery"`
	RequestURI  string              `json:"requestURI"`
	Headers     map[string][]string `json:"headers"`
	Body        string              `json:"body"`
}

// EchoHandler returns an "echo upstream": it answers every request with 200
// and a JSON object describing exactly what arrived: method, host, path (decoded),
// rawPath (r.URL.RawPath, empty when the path needed no special encoding),
// escapedPath, rawQuery, requestURI (the request-target unmodified), headers
// and body. It records nothing and shares no state.
func EchoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, http.StatusOK, echoResponse{
			Method:      r.Method,
			Host:        r.Host,
			Path:        r.URL.Path,
			RawPath:     r.URL.RawPath,
			EscapedPath: r.URL.EscapedPath(),
			RawQuery:    r.URL.RawQuery,
			RequestURI:  r.RequestURI,
			Headers:     r.Header,
			Body:        string(body),
		})
	})
}
