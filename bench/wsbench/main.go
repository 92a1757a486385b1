// Command wsbench measures WebSocket echo round trips, and can be the echo
// server it measures.
//
//	wsbench -serve 127.0.0.1:9000
//
// serves WebSockets on every path (each message echoed back as it came)
// and GET /healthz for readiness.
//
//	wsbench -url ws://127.0.0.1:8080/echo -conns 50 -size 1024 -duration 10s -max 2000000
//
// opens -conns connections (all before timing starts), then each one
// sends a message of -size bytes, waits for its echo, checks it, and
// sends the next, until -duration has passed or -max messages were sent
// in all. It prints one line:
//
//	conns=50 size=1024 msgs=123456 errors=0 secs=10.00 msgs_per_s=12345.6 p50_us=812.0 p99_us=2410.0 max_us=9120.0
//
// Latency is per round trip (write to echo read); msgs_per_s counts
// round trips completed per second over all connections. Everything is
// bounded: the run by -duration and -max, each operation by -timeout.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

func main() {
	serve := flag.String("serve", "", "serve the echo server on this address instead of measuring")
	url := flag.String("url", "", "WebSocket URL to measure (ws://host:port/path)")
	conns := flag.Int("conns", 50, "concurrent connections")
	size := flag.Int("size", 1024, "message size in bytes")
	duration := flag.Duration("duration", 10*time.Second, "measured time")
	maxMsgs := flag.Int64("max", 5_000_000, "stop after this many messages in all")
	timeout := flag.Duration("timeout", 10*time.Second, "bound on each dial, write and read")
	flag.Parse()

	if *serve != "" {
		log.Fatal(serveEcho(*serve))
	}
	if *url == "" || *conns < 1 || *size < 1 || *duration <= 0 || *maxMsgs < 1 {
		fmt.Fprintln(os.Stderr, "usage: wsbench -serve ADDR | wsbench -url ws://HOST:PORT/PATH [-conns 50] [-size 1024] [-duration 10s] [-max N] [-timeout 10s]")
		os.Exit(2)
	}
	if err := run(*url, *conns, *size, *duration, *maxMsgs, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "wsbench:", err)
		os.Exit(1)
	}
}

// serveEcho echoes every message on every connection until it closes.
func serveEcho(addr string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(64 << 20)
		ctx := context.Background()
		for {
			typ, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, b); err != nil {
				return
			}
		}
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}

func run(url string, n, size int, duration time.Duration, maxMsgs int64, timeout time.Duration) error {
	tr := &http.Transport{MaxIdleConnsPerHost: n}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	cs := make([]*websocket.Conn, n)
	for i := range cs {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: client})
		cancel()
		if err != nil {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			for _, c := range cs[:i] {
				c.CloseNow()
			}
			return fmt.Errorf("dial %d (status %d): %w", i, status, err)
		}
		c.SetReadLimit(int64(size) + 1<<10)
		cs[i] = c
	}

	msg := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
	var sent, errs atomic.Int64
	lats := make([][]time.Duration, n)
	firstErr := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(duration)
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1024)
			for time.Now().Before(end) && sent.Add(1) <= maxMsgs {
				t0 := time.Now()
				if err := roundTrip(c, msg, timeout); err != nil {
					errs.Add(1)
					firstErr[i] = err
					break
				}
				lat = append(lat, time.Since(t0))
			}
			lats[i] = lat
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	for _, c := range cs {
		c.Close(websocket.StatusNormalClosure, "")
	}

	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(len(all)-1, int(p*float64(len(all))))].Nanoseconds()) / 1e3
	}
	fmt.Printf("conns=%d size=%d msgs=%d errors=%d secs=%.2f msgs_per_s=%.1f p50_us=%.1f p99_us=%.1f max_us=%.1f\n",
		n, size, len(all), errs.Load(), secs, float64(len(all))/secs, pct(0.50), pct(0.99), pct(1))
	if e := errors.Join(firstErr...); e != nil {
		return e
	}
	return nil
}

// roundTrip sends msg and checks that the same bytes come back.
func roundTrip(c *websocket.Conn, msg []byte, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
		return err
	}
	_, b, err := c.Read(ctx)
	if err != nil {
		return err
	}
	if !bytes.Equal(b, msg) {
		return fmt.Errorf("echo of %d bytes came back as %d different bytes", len(msg), len(b))
	}
	return nil
}
