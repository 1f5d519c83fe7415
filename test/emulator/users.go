package emulator

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// A user is one finAPI user of the emulated client.
type user struct {
	id          string // as created; finAPI compares ids case-insensitively
	password    string
	email       *string
	phone       *string
	autoUpdate  bool
	failed      int  // failed password grants since the last success
	locked      bool // after MaxLoginAttempts failures
	verified    bool // may log in (Config.ManualUserVerification)
	busy        bool // a bank connection is busy: DELETE answers 423
	current     *grant
	other       map[string]*grant // by client id, for Config.OtherClients
	grants      map[*grant]struct{}
	connections []bankConnection // imported with POST /bankConnections/import
}

// userResponse is finAPI's User schema.
type userResponse struct {
	ID                  string  `json:"id"`
	Password            string  `json:"password"`
	Email               *string `json:"email"`
	Phone               *string `json:"phone"`
	IsAutoUpdateEnabled bool    `json:"isAutoUpdateEnabled"`
}

func (u *user) response(password string) userResponse {
	return userResponse{ID: u.id, Password: password, Email: u.email, Phone: u.phone, IsAutoUpdateEnabled: u.autoUpdate}
}

// userIDPattern is UserCreateParams.id's allowed characters.
var userIDPattern = regexp.MustCompile(`^[a-zA-Z0-9\-_.+@]*$`)

// CreateUser creates a user directly, as if POST /api/v2/users had been
// called (unverified with Config.ManualUserVerification); an existing user
// with the same id (in any case) is replaced. It does not validate id or
// password and counts nothing.
func (e *Emulator) CreateUser(id, password string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if old := e.users[strings.ToLower(id)]; old != nil {
		e.deleteUserLocked(old)
	}
	e.addUserLocked(id, password).verified = !e.cfg.ManualUserVerification
}

// UserExists reports whether a user with id exists; ids are compared
// case-insensitively, as finAPI does.
func (e *Emulator) UserExists(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.users[strings.ToLower(id)] != nil
}

// Users returns the ids of all existing users (process users included),
// sorted.
func (e *Emulator) Users() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	ids := make([]string, 0, len(e.users))
	for _, u := range e.users {
		ids = append(ids, u.id)
	}
	slices.Sort(ids)
	return ids
}

// SetUserBusy marks the user with id as having a busy bank connection, so
// that DELETE /api/v2/users answers 423 LOCKED until it is cleared. Unknown
// ids are ignored.
func (e *Emulator) SetUserBusy(id string, busy bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if u := e.users[strings.ToLower(id)]; u != nil {
		u.busy = busy
	}
}

// addUserLocked adds a verified user.
func (e *Emulator) addUserLocked(id, password string) *user {
	u := &user{id: id, password: password, verified: true, grants: map[*grant]struct{}{}}
	e.users[strings.ToLower(id)] = u
	return u
}

func (e *Emulator) deleteUserLocked(u *user) {
	e.revokeUserLocked(u)
	delete(e.users, strings.ToLower(u.id))
}

// userCreateParams is finAPI's UserCreateParams schema.
type userCreateParams struct {
	ID                  *string `json:"id"`
	Password            *string `json:"password"`
	Email               *string `json:"email"`
	Phone               *string `json:"phone"`
	IsAutoUpdateEnabled *bool   `json:"isAutoUpdateEnabled"`
}

// serveCreateUser is POST /api/v2/users, with the client's token.
func (e *Emulator) serveCreateUser(w http.ResponseWriter, r *http.Request) {
	e.locked(e.createUser)(w, r)
}

func (e *Emulator) createUser(r *http.Request) reply {
	caller, rep := e.authorizeLocked(r, roleClient, false)
	if rep != nil {
		return rep
	}
	ac := e.authContext(caller)
	var p userCreateParams
	if err := decodeJSON(r.Body, &p); err != nil {
		return e.errReply(http.StatusBadRequest, codeBadRequest, "Malformed request body: "+err.Error(), ac)
	}
	id := deref(p.ID)
	if id == "" {
		id = newUUID() // "If not specified, then a unique random value will be generated."
	}
	password := deref(p.Password)
	if p.Password == nil {
		password = newToken()[:32]
	}
	switch {
	case utf8.RuneCountInString(id) > 36:
		return e.errReply(http.StatusBadRequest, codeBadRequest, "The user id must not be longer than 36 characters", ac)
	case !userIDPattern.MatchString(id):
		return e.errReply(http.StatusBadRequest, codeBadRequest, "The user id contains illegal characters; allowed are 0-9, A-Z, a-z, -, _, ., +, @", ac)
	case utf8.RuneCountInString(password) < 6 || utf8.RuneCountInString(password) > 128:
		return e.errReply(http.StatusBadRequest, codeBadRequest, "The password must be between 6 and 128 characters long", ac)
	case utf8.RuneCountInString(deref(p.Email)) > 320:
		return e.errReply(http.StatusBadRequest, codeBadRequest, "The email must not be longer than 320 characters", ac)
	case utf8.RuneCountInString(deref(p.Phone)) > 50:
		return e.errReply(http.StatusBadRequest, codeBadRequest, "The phone must not be longer than 50 characters", ac)
	}
	if e.users[strings.ToLower(id)] != nil {
		e.incLocked(CounterUsersCreateExists)
		return e.errReply(http.StatusUnprocessableEntity, codeEntityExists, "User with id '"+id+"' already exists", ac)
	}
	u := e.addUserLocked(id, password)
	u.verified = !e.cfg.ManualUserVerification
	u.email, u.phone = p.Email, p.Phone
	u.autoUpdate = p.IsAutoUpdateEnabled != nil && *p.IsAutoUpdateEnabled
	e.incLocked(CounterUsersCreate)
	// finAPI returns the password in plain text on creation only.
	return jsonReply(http.StatusCreated, u.response(u.password))
}

// serveVerifyUser is POST /api/v2/users/verify/{userId}, with the client's
// token: 200 with an empty body, 404 UNKNOWN_ENTITY for an unknown user,
// 422 USER_ALREADY_VERIFIED for a verified one. Ids are case-insensitive.
func (e *Emulator) serveVerifyUser(w http.ResponseWriter, r *http.Request) {
	e.locked(func(r *http.Request) reply {
		caller, rep := e.authorizeLocked(r, roleClient, false)
		if rep != nil {
			return rep
		}
		id := strings.TrimPrefix(strings.TrimSuffix(r.URL.Path, "/"), "/api/v2/users/verify/")
		u := e.users[strings.ToLower(id)]
		switch {
		case u == nil:
			return e.errReply(http.StatusNotFound, codeUnknownEntity, "User not found", e.authContext(caller))
		case u.verified:
			return e.errReply(http.StatusUnprocessableEntity, codeAlreadyVerified, "User is already verified", e.authContext(caller))
		}
		u.verified = true
		e.incLocked(CounterUsersVerify)
		return emptyReply(http.StatusOK)
	})(w, r)
}

// serveGetUser is GET /api/v2/users, with the user's token.
func (e *Emulator) serveGetUser(w http.ResponseWriter, r *http.Request) {
	e.locked(func(r *http.Request) reply {
		t, rep := e.authorizeLocked(r, roleUser, true)
		if rep != nil {
			return rep
		}
		e.incLocked(CounterUsersGet)
		return jsonReply(http.StatusOK, t.user().response("XXXXX"))
	})(w, r)
}

// serveEditUser is PATCH /api/v2/users, with the user's token.
func (e *Emulator) serveEditUser(w http.ResponseWriter, r *http.Request) {
	e.locked(func(r *http.Request) reply {
		t, rep := e.authorizeLocked(r, roleUser, true)
		if rep != nil {
			return rep
		}
		var p userCreateParams
		if err := decodeJSON(r.Body, &p); err != nil {
			return e.errReply(http.StatusBadRequest, codeBadRequest, "Malformed request body: "+err.Error(), e.authContext(t))
		}
		if p.Email == nil && p.Phone == nil && p.IsAutoUpdateEnabled == nil {
			return e.errReply(http.StatusBadRequest, codeBadRequest, "At least one field must have a non-null value", e.authContext(t))
		}
		u := t.user()
		if p.Email != nil {
			u.email = emptyToNil(*p.Email)
		}
		if p.Phone != nil {
			u.phone = emptyToNil(*p.Phone)
		}
		if p.IsAutoUpdateEnabled != nil {
			u.autoUpdate = *p.IsAutoUpdateEnabled
		}
		return jsonReply(http.StatusOK, u.response("XXXXX"))
	})(w, r)
}

// serveDeleteUser is DELETE /api/v2/users, with the user's token: it deletes
// the user and invalidates all its tokens, unless the user is busy (423).
func (e *Emulator) serveDeleteUser(w http.ResponseWriter, r *http.Request) {
	e.locked(func(r *http.Request) reply {
		t, rep := e.authorizeLocked(r, roleUser, true)
		if rep != nil {
			return rep
		}
		u := t.user()
		if u.busy {
			return e.errReply(http.StatusLocked, codeLocked, "User cannot be deleted at the moment as at least one of his bank connections is busy", e.authContext(t))
		}
		e.deleteUserLocked(u)
		e.incLocked(CounterUsersDelete)
		return emptyReply(http.StatusOK)
	})(w, r)
}

// decodeJSON decodes exactly one JSON value from body into v.
func decodeJSON(body io.Reader, v any) error {
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errTrailingData
	}
	return nil
}

type constError string

func (e constError) Error() string { return string(e) }

const errTrailingData = constError("unexpected data after the JSON value")

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func emptyToNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
