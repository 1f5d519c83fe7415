package finapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
)

// ErrUnknownUser: finAPI knows no user of that id (404 to a client-side
// password change).
var ErrUnknownUser = errors.New("finAPI knows no such user")

// A PasswordChange is finAPI's PasswordChangingResource: what a client-side
// password change of one user needs. PasswordChangeToken and UserEmail are
// encrypted with the client's data decryption key.
type PasswordChange struct {
	UserID              string `json:"userId"`
	UserEmail           string `json:"userEmail"`
	PasswordChangeToken string `json:"passwordChangeToken"`
}

// RequestPasswordChange asks finAPI for a password change token of the user
// id, with a client token (POST /api/v2/users/requestPasswordChange). An
// unknown user is an error of kind ErrUnknownUser.
func (c *Client) RequestPasswordChange(ctx context.Context, clientToken, id string) (_ PasswordChange, err error) {
	const op = "request password change"
	defer c.observe(op, c.now(), &err)
	body, _ := json.Marshal(map[string]string{"userId": id})
	resp, err := c.doOnce(ctx, op, c.request(http.MethodPost, "/api/v2/users/requestPasswordChange", jsonType, body, clientToken))
	if err != nil {
		return PasswordChange{}, err
	}
	if resp.status/100 != 2 {
		return PasswordChange{}, c.userRefusal(op, resp)
	}
	var pc PasswordChange
	if json.Unmarshal(resp.body, &pc) != nil || pc.PasswordChangeToken == "" {
		return PasswordChange{}, &Error{Op: op, Kind: ErrInvalidAnswer, Status: resp.status, RequestID: resp.requestID,
			Err: errors.New("no passwordChangeToken in the answer")}
	}
	return pc, nil
}

// ExecutePasswordChange sets the password of the user id, with a client
// token and the decrypted password change token
// (POST /api/v2/users/executePasswordChange). finAPI then revokes every
// token of that user, for every client.
func (c *Client) ExecutePasswordChange(ctx context.Context, clientToken, id, password, token string) (err error) {
	const op = "execute password change"
	defer c.observe(op, c.now(), &err)
	body, _ := json.Marshal(map[string]string{"userId": id, "password": password, "passwordChangeToken": token})
	resp, err := c.doOnce(ctx, op, c.request(http.MethodPost, "/api/v2/users/executePasswordChange", jsonType, body, clientToken))
	if err != nil {
		return err
	}
	if resp.status/100 != 2 {
		return c.userRefusal(op, resp)
	}
	return nil
}

// userRefusal is refusal, with a 404 as ErrUnknownUser.
func (c *Client) userRefusal(op string, r *response) error {
	err := c.refusal(op, r)
	var e *Error
	if r.status == http.StatusNotFound && errors.As(err, &e) && e.Kind == ErrRejected {
		e.Kind = ErrUnknownUser
	}
	return err
}
