package observe

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
)

// FlushInterval is the longest a line waits in an Output's buffer.
const FlushInterval = 100 * time.Millisecond

// Output is the access log's destination. Lines are buffered and
// written when the buffer fills or FlushInterval after the first line
// in it, so a request costs no system call; Close writes the rest.
type Output struct {
	mu     sync.Mutex
	buf    *bufio.Writer
	closer io.Closer // the file, when Output opened one
	timer  *time.Timer
	armed  bool
	closed bool
}

// OpenOutput opens the destination named in the config: "stdout",
// "stderr" (the writers given) or a file path, appended to and created
// if need be.
func OpenOutput(dest string, stdout, stderr io.Writer) (*Output, error) {
	var w io.Writer
	var c io.Closer
	switch dest {
	case "stdout", "":
		w = stdout
	case "stderr":
		w = stderr
	default:
		f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("access log: %w", err)
		}
		w, c = f, f
	}
	return NewOutput(w, c), nil
}

// NewOutput buffers w; Close closes c, when not nil, after the flush.
func NewOutput(w io.Writer, c io.Closer) *Output {
	o := &Output{buf: bufio.NewWriterSize(w, 64<<10), closer: c}
	o.timer = time.AfterFunc(time.Hour, func() { _ = o.Flush() })
	o.timer.Stop()
	return o
}

// Write buffers p, one log line as slog writes it.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return 0, errors.New("access log: closed")
	}
	n, err := o.buf.Write(p)
	if !o.armed && o.buf.Buffered() > 0 {
		o.armed = true
		o.timer.Reset(FlushInterval)
	}
	return n, err
}

// Flush writes what is buffered.
func (o *Output) Flush() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.armed = false
	return o.buf.Flush()
}

// Close flushes and closes the file, if any. Later writes fail.
func (o *Output) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	o.closed = true
	o.timer.Stop()
	err := o.buf.Flush()
	if o.closer != nil {
		err = errors.Join(err, o.closer.Close())
	}
	return err
}

// NewHandler is the access log's slog handler: JSON lines (the same as
// slog.JSONHandler's, written faster, see jsonHandler) or, for "text",
// one short line per request for a person to read (see textHandler) on
// w.
func NewHandler(format string, w io.Writer) slog.Handler {
	if format == "text" {
		return newTextHandler(w)
	}
	return newJSONHandler(w)
}
