package emulator

import (
	"io"
	"net/http"
	"strconv"
)

// fixedAccounts is the body FixedHandler answers: one account in the shape
// of finAPI Access v2's account list (GET /api/v2/accounts), about as long
// as a real one-account answer.
const fixedAccounts = `{"accounts":[{"id":1,"bankConnectionId":1,"accountName":"Girokonto","iban":"DE13700800000061110500","accountNumber":"61110500","subAccountNumber":null,"accountHolderName":"Max Mustermann","accountHolderId":null,"accountCurrency":"EUR","accountType":"CHECKING","balance":1234.56,"overdraft":null,"overdraftLimit":null,"availableFunds":null,"isNew":false,"interfaces":[{"interface":"XS2A","status":"UPDATED","capabilities":["DATA_DOWNLOAD"],"lastSuccessfulUpdate":"2026-12-01T08:00:00.000+0000","lastUpdateAttempt":"2026-12-01T08:00:00.000+0000"}]}],"paging":{"page":1,"perPage":20,"pageCount":1,"totalCount":1}}`

// FixedHandler returns the load benchmark's upstream: every request is
// answered 200 with the same finAPI-like account list, and with the
// request's X-Request-Id, or a generated one when none was sent, as finAPI
// Access returns one with every answer (spec, "Request IDs": "The request
// ID is always returned back in the response of a service"). Unlike the
// echo upstream, what it answers does not grow with the headers it is
// sent: a proxy that sends finAPI more headers (the PSU headers, a request
// id) pays for sending them, not again for an echo of them. It reads and
// discards request bodies.
func FixedHandler() http.Handler {
	body := []byte(fixedAccounts)
	length := []string{strconv.Itoa(len(body))}
	contentType := []string{"application/json"}
	// finAPI generates "a random ID internally" for a call that sent
	// none; for the benchmark its form does not matter, its length does
	// (as long as finproxy's ids), and generating one would cost only the
	// baseline's requests.
	generated := []string{"selfgen-000000000000000000000000"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"], h["Content-Length"] = contentType, length
		if id, ok := r.Header["X-Request-Id"]; ok {
			h["X-Request-Id"] = id
		} else {
			h["X-Request-Id"] = generated
		}
		if r.Body != nil {
			io.Copy(io.Discard, r.Body)
		}
		w.Write(body)
	})
}
