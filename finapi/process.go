package finapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
)

// CreateProcess creates a process (POST /api/v1/processes) for the one
// client reference given and returns its process token. finAPI answers a
// list, {"processes":[{"clientReference","processToken"}]}, one entry per
// reference sent; the entry of reference is taken (or the only entry, when
// it names no reference). Any 2xx is a success: finAPI does not publish
// which. It is not retried: a retry could create a second process.
func (c *Client) CreateProcess(ctx context.Context, processID, reference string) (_ string, err error) {
	const op = opCreateProcess
	defer c.observe(op, c.now(), &err)
	body, _ := json.Marshal(map[string]any{
		"clientId":         c.ClientID,
		"clientSecret":     c.ClientSecret,
		"clientReferences": []map[string]string{{"clientReference": reference}},
		"processId":        processID,
	})
	resp, err := c.doOnce(ctx, op, c.request(http.MethodPost, "/api/v1/processes", jsonType, body, ""))
	if err != nil {
		return "", err
	}
	if resp.status/100 != 2 {
		return "", c.refusal(op, resp)
	}
	var out struct {
		Processes []struct {
			ClientReference *string `json:"clientReference"`
			ProcessToken    string  `json:"processToken"`
		} `json:"processes"`
	}
	if json.Unmarshal(resp.body, &out) != nil {
		return "", c.invalid(resp, op, "answer is not a list of processes")
	}
	for _, p := range out.Processes {
		if p.ClientReference != nil && *p.ClientReference == reference ||
			p.ClientReference == nil && len(out.Processes) == 1 {
			if p.ProcessToken == "" {
				return "", c.invalid(resp, op, "process entry has no processToken")
			}
			return p.ProcessToken, nil
		}
	}
	return "", c.invalid(resp, op, "answer has no process for the client reference sent")
}

// ExchangeProcess exchanges a process token for its access token
// (GET /api/v1/processes/{processToken}?invalidate=…). With invalidate, as
// finAPI recommends, the process token cannot be used again; without, it
// can be exchanged again (at most 10 times in all, within a period set per
// mandator) to resume the process. Any 2xx is a success. It is not retried:
// after invalidate=true a second exchange fails, and each one counts toward
// the 10.
func (c *Client) ExchangeProcess(ctx context.Context, processToken string, invalidate bool) (_ string, err error) {
	const op = "exchange process"
	defer c.observe(op, c.now(), &err)
	path := "/api/v1/processes/" + url.PathEscape(processToken) + "?invalidate=" + strconv.FormatBool(invalidate)
	resp, err := c.doOnce(ctx, op, c.request(http.MethodGet, path, "", nil, ""))
	if err != nil {
		return "", err
	}
	if resp.status/100 != 2 {
		return "", c.refusal(op, resp)
	}
	var out struct {
		AccessToken string `json:"accessToken"`
	}
	if json.Unmarshal(resp.body, &out) != nil {
		return "", c.invalid(resp, op, "answer is not JSON")
	}
	if out.AccessToken == "" {
		return "", c.invalid(resp, op, "answer has no accessToken")
	}
	return out.AccessToken, nil
}
