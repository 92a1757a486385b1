package jobs

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"
)

// callbackAttempts is how many times a callback is sent before it counts
// as failed.
const callbackAttempts = 5

// CallbackBody is the JSON a callback POSTs when a job ends. The result's
// body is in Body (base64 in the JSON, as encoding/json writes a []byte),
// so that a receiver gets the status, the header and the body in one
// signed document.
type CallbackBody struct {
	ID           string      `json:"id"`
	Status       string      `json:"status"`
	LastStatus   int         `json:"last_status"`
	Error        string      `json:"error,omitempty"`
	ResultStatus int         `json:"result_status,omitempty"`
	ResultHeader http.Header `json:"result_header,omitempty"`
	Body         []byte      `json:"body,omitempty"`
}

// Sign returns the Gateway-Signature field of a callback body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed by secret>".
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// callback sends j's outcome to its Callback-Url, in the background.
func (q *Queue) callback(o *RouteOptions, j *Job) {
	if j.CallbackURL == "" || o == nil || len(o.CallbackSecret) == 0 {
		return
	}
	select {
	case <-q.bgStop:
		return
	default:
	}
	q.bg.Add(1)
	go q.deliver(o, j)
}

func (q *Queue) deliver(o *RouteOptions, j *Job) {
	defer q.bg.Done()
	cb := CallbackBody{ID: j.ID, Status: j.State, LastStatus: j.Status, Error: j.Error,
		ResultStatus: j.ResultStatus, ResultHeader: j.ResultHeader}
	if j.ResultStatus != 0 {
		if rr, err := q.store.Result(q.hardCtx, j.ID); err == nil {
			cb.Body, err = io.ReadAll(io.LimitReader(rr, o.MaxResultSize))
			rr.Close()
			if err != nil {
				q.log.Warn("jobs: callback: reading the result", "id", j.ID, "err", err)
			}
		}
	}
	body, err := json.Marshal(cb)
	if err != nil {
		q.st.callbackFails.Add(1)
		return
	}
	wait := o.Backoff
	for i := range callbackAttempts {
		if i > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-q.hardCtx.Done():
				t.Stop()
				q.st.callbackFails.Add(1)
				return
			}
			wait = min(2*wait, o.MaxBackoff)
		}
		if q.post(j, o, body) {
			return
		}
	}
	q.st.callbackFails.Add(1)
	q.log.Warn("jobs: callback failed", "id", j.ID, "url", j.CallbackURL)
}

func (q *Queue) post(j *Job, o *RouteOptions, body []byte) bool {
	ctx, cancel := context.WithTimeout(q.hardCtx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.CallbackURL, bytes.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Gateway-Job-Id", j.ID)
	req.Header.Set("Gateway-Signature", Sign(o.CallbackSecret, q.now(), body))
	resp, err := q.client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}
