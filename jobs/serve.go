package jobs

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"math"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

// statusJSON is the body of GET <prefix><id>.
type statusJSON struct {
	ID         string     `json:"id"`
	Status     string     `json:"status"`
	Attempts   int        `json:"attempts"`
	LastStatus int        `json:"last_status"`
	Error      string     `json:"error"`
	Created    *time.Time `json:"created"`
	Started    *time.Time `json:"started"`
	Finished   *time.Time `json:"finished"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func statusOf(j *Job) statusJSON {
	return statusJSON{
		ID: j.ID, Status: j.State, Attempts: j.Attempts, LastStatus: j.Status, Error: j.Error,
		Created: timePtr(j.Created), Started: timePtr(j.Started), Finished: timePtr(j.Finished),
	}
}

// retryAfter is the Retry-After of a pending job: when its retry is due,
// else a second.
func retryAfter(q *Queue, j *Job) string {
	if d := j.NotBefore.Sub(q.now()); d > time.Second {
		return strconv.Itoa(int(math.Ceil(d.Seconds())))
	}
	return "1"
}

func pending(j *Job) bool { return j.State == StateQueued || j.State == StateRunning }

// Wrap serves the jobs prefix (status, result, cancel) before next
// (routing) sees the request.
func (q *Queue) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		// The proxy resolves dot segments before routing; so does this,
		// so that "/x/../_jobs/<id>" is answered here and not by a route.
		if strings.Contains(p, ".") && strings.HasPrefix(p, "/") {
			if c := path.Clean(p); strings.HasPrefix(c+"/", q.prefix) {
				p = c
				if strings.HasSuffix(r.URL.Path, "/") && c != "/" {
					p += "/"
				}
			}
		}
		if !strings.HasPrefix(p, q.prefix) {
			next.ServeHTTP(w, r)
			return
		}
		id, sub, _ := strings.Cut(p[len(q.prefix):], "/")
		if !validID(id) || (sub != "" && sub != "result") {
			notFound(w)
			return
		}
		q.serveJob(w, r, id, sub == "result")
	})
}

func notFound(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such job"})
}

// mayView reports whether r carries the credentials that created j.
func (q *Queue) mayView(j *Job, r *http.Request) bool {
	got := owner(q.routeOpts(j.Route), r)
	if len(got) == 0 && len(j.Owner) == 0 {
		return true
	}
	return subtle.ConstantTimeCompare(got, j.Owner) == 1
}

func (q *Queue) serveJob(w http.ResponseWriter, r *http.Request, id string, result bool) {
	j, err := q.store.Get(r.Context(), id)
	if errors.Is(err, ErrNotFound) {
		notFound(w)
		return
	}
	if err != nil {
		q.log.Error("jobs: get", "id", id, "err", err)
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "job store unavailable"})
		return
	}
	if !q.mayView(j, r) {
		notFound(w) // as if it did not exist: ids are not confirmed to strangers
		return
	}
	if !j.Expires.IsZero() && !q.now().Before(j.Expires) {
		writeJSON(w, http.StatusGone, map[string]string{"error": "job expired"})
		return
	}
	if result {
		q.serveResult(w, r, j)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if !pending(j) && j.ResultStatus != 0 {
			w.Header().Set("Location", q.prefix+j.ID+"/result")
			writeJSON(w, http.StatusSeeOther, statusOf(j))
			return
		}
		if pending(j) {
			w.Header().Set("Retry-After", retryAfter(q, j))
		}
		writeJSON(w, http.StatusOK, statusOf(j))
	case http.MethodDelete:
		q.serveCancel(w, r, j)
	default:
		w.Header().Set("Allow", "GET, HEAD, DELETE")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
	}
}

// serveResult replays the final upstream response, its body streamed
// from the store.
func (q *Queue) serveResult(w http.ResponseWriter, r *http.Request, j *Job) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
		return
	}
	if pending(j) || j.ResultStatus == 0 {
		if pending(j) {
			w.Header().Set("Retry-After", retryAfter(q, j))
		}
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "the job has no result", "status": j.State})
		return
	}
	body, err := q.store.Result(r.Context(), j.ID)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "the job has no result", "status": j.State})
			return
		}
		q.log.Error("jobs: result", "id", j.ID, "err", err)
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "job store unavailable"})
		return
	}
	defer body.Close()
	h := w.Header()
	for k, v := range j.ResultHeader {
		h[k] = append([]string(nil), v...)
	}
	h.Set("Content-Length", strconv.FormatInt(j.ResultSize, 10))
	w.WriteHeader(j.ResultStatus)
	if r.Method == http.MethodHead {
		return
	}
	// A *os.File body goes by sendfile where the connection allows it;
	// either way it is copied in pieces, never loaded whole.
	_, _ = io.Copy(w, body)
}

// cancelWait bounds how long DELETE waits for a running attempt to end.
const cancelWait = 10 * time.Second

func (q *Queue) serveCancel(w http.ResponseWriter, r *http.Request, j *Job) {
	nj, code, err := q.cancel(r.Context(), j.ID)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			notFound(w)
			return
		}
		q.log.Error("jobs: cancel", "id", j.ID, "err", err)
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "job store unavailable"})
		return
	}
	writeJSON(w, code, statusOf(nj))
}

// cancel cancels the job id: a queued job never runs; a running one has
// its attempt cancelled (DELETE waits for it a while: 200 once it ended,
// 202 if it has not yet). A finished job cannot be: 409.
func (q *Queue) cancel(ctx context.Context, id string) (*Job, int, error) {
	jl := q.jobLock(id)
	jl.Lock()
	j, err := q.store.Get(ctx, id)
	if err != nil {
		jl.Unlock()
		return nil, 0, err
	}
	if !pending(j) {
		jl.Unlock()
		return j, http.StatusConflict, nil
	}
	q.mu.Lock()
	a := q.running[id]
	q.mu.Unlock()
	if a != nil && j.State == StateRunning {
		a.cancel(errCancelled)
		jl.Unlock()
		t := time.NewTimer(cancelWait)
		defer t.Stop()
		select {
		case <-a.done:
		case <-t.C:
		case <-ctx.Done():
		}
		j, err := q.store.Get(ctx, id)
		if err != nil {
			return nil, 0, err
		}
		if pending(j) {
			return j, http.StatusAccepted, nil
		}
		return j, http.StatusOK, nil
	}
	// Queued, or claimed by a worker that has not yet registered its
	// attempt: it checks the state under the same lock and skips it.
	var o *RouteOptions
	if rt := q.routes[j.Route]; rt != nil {
		o = rt.opts.Load()
	}
	q.finish(j, o, StateCancelled)
	j.Error = "cancelled"
	err = q.store.Update(context.WithoutCancel(ctx), j)
	jl.Unlock()
	if err != nil {
		return nil, 0, err
	}
	q.st.cancelled.Add(1)
	q.callback(o, j)
	return j, http.StatusOK, nil
}

// finish marks j ended in state.
func (q *Queue) finish(j *Job, o *RouteOptions, state string) {
	j.State = state
	j.Finished = q.now()
	j.NotBefore = time.Time{}
	life := DefaultResultLifetime
	if o != nil {
		life = o.ResultLifetime
	}
	j.Expires = j.Finished.Add(life)
}
