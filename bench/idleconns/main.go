// Command idleconns opens many keep-alive HTTP/1.1 connections to one
// server, sends one GET on each and reads its answer, then holds them all
// idle, so that the footprint benchmark can read what each idle client
// connection costs the server in resident memory. It is bounded in
// connections (-n) and in time (-hold, -max-time).
//
// Output: the line "open=10000 errors=0 seconds=1.234" once every
// connection has had its answer (the moment to read the server's RSS),
// then "closed=N alive=M" when the hold ends, M being the connections
// the server had not closed meanwhile (checked by a read that must time
// out).
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "", "server address, host:port")
	path := flag.String("path", "/", "the path of the one GET on each connection")
	n := flag.Int("n", 10000, "connections")
	par := flag.Int("c", 64, "connections opened at once")
	hold := flag.Duration("hold", 20*time.Second, "how long to hold the connections idle after the last answer")
	maxTime := flag.Duration("max-time", time.Minute, "give up opening connections after this long")
	pad := flag.Int("pad", 0, "bytes of an extra request header (X-Pad), to make the request as large as a browser's with its cookies")
	flag.Parse()
	if *addr == "" || *n < 1 || *par < 1 {
		fmt.Fprintln(os.Stderr, "usage: idleconns -addr HOST:PORT [-path /] [-n 10000] [-c 64] [-hold 20s] [-max-time 1m] [-pad 0]")
		os.Exit(2)
	}
	req := "GET " + *path + " HTTP/1.1\r\nHost: " + *addr + "\r\nUser-Agent: idleconns\r\n"
	if *pad > 0 {
		req += "X-Pad: " + strings.Repeat("p", *pad) + "\r\n"
	}
	reqBytes := []byte(req + "\r\n")

	conns := make([]net.Conn, *n)
	var next, errs atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(*maxTime)
	begin := time.Now()
	var wg sync.WaitGroup
	for range *par {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(*n) || time.Now().After(deadline) {
					return
				}
				c, err := open(*addr, reqBytes, deadline)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	open := 0
	for _, c := range conns {
		if c != nil {
			open++
		}
	}
	fmt.Printf("open=%d errors=%d seconds=%.3f\n", open, errs.Load(), time.Since(begin).Seconds())
	if e := firstErr.Load(); e != nil {
		fmt.Fprintln(os.Stderr, "first error:", e)
	}
	time.Sleep(*hold)

	// A connection the server closed during the hold reads EOF at once;
	// one still open times out.
	alive := 0
	for _, c := range conns {
		if c == nil {
			continue
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
		var b [1]byte
		if _, err := c.Read(b[:]); errors.Is(err, os.ErrDeadlineExceeded) {
			alive++
		}
		c.Close()
	}
	fmt.Printf("closed=%d alive=%d\n", open, alive)
}

// open dials addr, sends req and reads the whole answer, leaving the
// connection ready for its next request.
func open(addr string, req []byte, deadline time.Time) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(deadline)
	if _, err := c.Write(req); err != nil {
		c.Close()
		return nil, err
	}
	// A small reader: the client's own memory is not what is measured,
	// and 10,000 of them add up.
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 512), nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	if err == nil && resp.Close {
		err = errors.New("the server closed the connection after its answer")
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}
