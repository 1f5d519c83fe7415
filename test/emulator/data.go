package emulator

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// The data endpoints answer deterministic fake data: every user has one demo
// bank connection with two accounts, whose ids and IBANs derive from the
// user id, plus whatever it imported.

// bankConnection is finAPI's BankConnection schema (the fields the emulator
// fills), plus ReceivedBodySha256, which finAPI does not have.
type bankConnection struct {
	ID                               int64   `json:"id"`
	BankID                           int64   `json:"bankId"`
	Name                             *string `json:"name"`
	BankingUserID                    *string `json:"bankingUserId"`
	BankingCustomerID                *string `json:"bankingCustomerId"`
	BankingPin                       *string `json:"bankingPin"`
	Type                             string  `json:"type"`
	UpdateStatus                     string  `json:"updateStatus"`
	CategorizationStatus             string  `json:"categorizationStatus"`
	LastManualUpdate                 any     `json:"lastManualUpdate"`
	LastAutoUpdate                   any     `json:"lastAutoUpdate"`
	IbanOnlyMoneyTransferSupported   bool    `json:"ibanOnlyMoneyTransferSupported"`
	IbanOnlyDirectDebitSupported     bool    `json:"ibanOnlyDirectDebitSupported"`
	CollectiveMoneyTransferSupported bool    `json:"collectiveMoneyTransferSupported"`
	DefaultTwoStepProcedureID        *string `json:"defaultTwoStepProcedureId"`
	TwoStepProcedures                []any   `json:"twoStepProcedures"`
	Interfaces                       []any   `json:"interfaces"`
	AccountIDs                       []int64 `json:"accountIds"`
	Owners                           []any   `json:"owners"`
	Bank                             any     `json:"bank"`
	FurtherLoginNotRecommended       bool    `json:"furtherLoginNotRecommended"`

	// ReceivedBodySha256 is an emulator extension, set on the answer of
	// POST /api/v2/bankConnections/import only: the hex SHA-256 of the
	// request body exactly as received, so that tests can prove a replayed
	// body is byte-identical.
	ReceivedBodySha256 string `json:"receivedBodySha256,omitempty"`
}

// paging is finAPI's Paging schema.
type paging struct {
	Page       int `json:"page"`
	PerPage    int `json:"perPage"`
	PageCount  int `json:"pageCount"`
	TotalCount int `json:"totalCount"`
}

func onePage(n int) paging { return paging{Page: 1, PerPage: max(n, 20), PageCount: 1, TotalCount: n} }

const demoBankID = 280001

var demoBanks = []map[string]any{
	demoBank(demoBankID, "finAPI Test Bank", "00000000", "Nürnberg"),
	demoBank(280002, "finAPI Test Redirect Bank", "00000001", "München"),
}

func demoBank(id int64, name, blz, city string) map[string]any {
	return map[string]any{
		"id": id, "name": name, "loginHint": nil, "bic": "TESTDE99XXX", "blzs": []string{blz}, "blz": blz,
		"location": "DE", "city": city, "isSupported": true, "isTestBank": true, "popularity": 0, "health": 100,
		"loginFieldUserId": "Onlinebanking-ID", "loginFieldCustomerId": nil, "loginFieldPin": "PIN",
		"pinsAreVolatile": false, "isCustomerIdPassword": false, "supportedDataSources": []string{"FINTS_SERVER"},
		"interfaces": []any{}, "bankGroup": nil, "lastCommunicationAttempt": nil,
		"lastSuccessfulCommunication": nil, "isBeta": false,
	}
}

// userSeed returns a number in [1000000, 9999999] derived from u's id.
func userSeed(u *user) int64 {
	h := sha256.Sum256([]byte(strings.ToLower(u.id)))
	return 1_000_000 + int64(binary.BigEndian.Uint32(h[:4])%9_000_000)
}

// demoConnection is u's built-in bank connection.
func demoConnection(u *user) bankConnection {
	seed := userSeed(u)
	name := "Demo connection"
	return bankConnection{
		ID: seed, BankID: demoBankID, Name: &name, Type: "DEMO", UpdateStatus: "READY",
		CategorizationStatus: "READY", TwoStepProcedures: []any{}, Interfaces: []any{},
		AccountIDs: []int64{seed*10 + 1, seed*10 + 2}, Owners: []any{}, Bank: demoBanks[0],
	}
}

// demoAccounts are the accounts of u's built-in bank connection.
func demoAccounts(u *user) []map[string]any {
	seed := userSeed(u)
	var out []map[string]any
	for i, kind := range []string{"Checking", "Savings"} {
		id := seed*10 + int64(i+1)
		number := fmt.Sprintf("%010d", id%10_000_000_000)
		balance := float64(id%100_000) / 100
		out = append(out, map[string]any{
			"id": id, "bankConnectionId": seed, "accountName": kind + " account",
			"iban": "DE00" + "00000000" + number, "accountNumber": number, "subAccountNumber": nil,
			"accountHolderName": "Max Mustermann", "accountHolderId": "XXXXX", "accountCurrency": "EUR",
			"accountTypeId": i + 1, "accountTypeName": kind, "accountType": kind,
			"balance": balance, "overdraft": 0, "overdraftLimit": 0, "availableFunds": balance,
			"lastSuccessfulUpdate": "2024-01-01 00:00:00.000", "lastUpdateAttempt": "2024-01-01 00:00:00.000",
			"isNew": false, "status": "UPDATED", "supportedOrders": []string{}, "interfaces": []any{},
			"clearingAccounts": []any{}, "isSeized": false,
		})
	}
	return out
}

// dataEndpoint wraps a data endpoint: it counts the call and authorizes the
// token with role want.
func (e *Emulator) dataEndpoint(want role, fn func(r *http.Request, t *accessToken) reply) http.HandlerFunc {
	return e.locked(func(r *http.Request) reply {
		e.incLocked(CounterData)
		t, rep := e.authorizeLocked(r, want, true)
		if rep != nil {
			return rep
		}
		return fn(r, t)
	})
}

// serveAccounts is GET /api/v2/accounts.
func (e *Emulator) serveAccounts(w http.ResponseWriter, r *http.Request) {
	e.dataEndpoint(roleUser, func(_ *http.Request, t *accessToken) reply {
		accounts := demoAccounts(t.user())
		return jsonReply(http.StatusOK, map[string]any{"accounts": accounts, "paging": onePage(len(accounts))})
	})(w, r)
}

// serveAccount is GET /api/v2/accounts/{id}.
func (e *Emulator) serveAccount(w http.ResponseWriter, r *http.Request) {
	e.dataEndpoint(roleUser, func(r *http.Request, t *accessToken) reply {
		id, err := strconv.ParseInt(strings.TrimPrefix(strings.TrimSuffix(r.URL.Path, "/"), "/api/v2/accounts/"), 10, 64)
		if err != nil {
			return e.errReply(http.StatusBadRequest, codeBadRequest, "Illegal account id", e.authContext(t))
		}
		for _, a := range demoAccounts(t.user()) {
			if a["id"] == id {
				return jsonReply(http.StatusOK, a)
			}
		}
		return e.errReply(http.StatusNotFound, codeUnknownEntity, "Account not found", e.authContext(t))
	})(w, r)
}

// serveBankConnections is GET /api/v2/bankConnections.
func (e *Emulator) serveBankConnections(w http.ResponseWriter, r *http.Request) {
	e.dataEndpoint(roleUser, func(_ *http.Request, t *accessToken) reply {
		u := t.user()
		conns := append([]bankConnection{demoConnection(u)}, u.connections...)
		return jsonReply(http.StatusOK, map[string]any{"connections": conns})
	})(w, r)
}

// serveBanks is GET /api/v2/banks; finAPI accepts a user's or the client's
// token here.
func (e *Emulator) serveBanks(w http.ResponseWriter, r *http.Request) {
	e.dataEndpoint(roleAny, func(*http.Request, *accessToken) reply {
		return jsonReply(http.StatusOK, map[string]any{"banks": demoBanks, "paging": onePage(len(demoBanks))})
	})(w, r)
}

// serveImport is POST /api/v2/bankConnections/import. It accepts any JSON
// object, adds a bank connection to the user and answers 201 with it,
// including receivedBodySha256.
func (e *Emulator) serveImport(w http.ResponseWriter, r *http.Request) {
	e.dataEndpoint(roleUser, func(r *http.Request, t *accessToken) reply {
		body, _ := io.ReadAll(r.Body)
		var params struct {
			BankID *int64  `json:"bankId"`
			Name   *string `json:"name"`
		}
		if err := json.Unmarshal(body, &params); err != nil {
			return e.errReply(http.StatusBadRequest, codeBadRequest, "Malformed request body: "+err.Error(), e.authContext(t))
		}
		u := t.user()
		c := bankConnection{
			ID: userSeed(u)*100 + int64(len(u.connections)+1), BankID: demoBankID, Name: params.Name,
			Type: "DEMO", UpdateStatus: "READY", CategorizationStatus: "READY", TwoStepProcedures: []any{},
			Interfaces: []any{}, AccountIDs: []int64{}, Owners: []any{}, Bank: demoBanks[0],
		}
		if params.BankID != nil {
			c.BankID = *params.BankID
		}
		u.connections = append(u.connections, c)
		sum := sha256.Sum256(body)
		c.ReceivedBodySha256 = hex.EncodeToString(sum[:])
		return jsonReply(http.StatusCreated, c)
	})(w, r)
}
