// Command rawserver is the "practical limit" reference of `make bench`: a
// minimal TCP server that answers each line with a valid AutoReplyNet reply
// (services/autoreply/README.md), so loadgen's autoreply-tcp scenario can
// run against it and check its answers. It has none of the service's
// machinery (no netserve, limits, metrics, zap logging, random notes):
// a goroutine per connection, a buffered reader, and a buffered writer
// flushed when the input is drained.
//
//	rawserver [-addr 127.0.0.1:0]
//
// It writes one JSON line {"msg":"listening","addr":"HOST:PORT"} on stderr
// once it listens, and stops on SIGINT or SIGTERM. It reads no environment
// variables.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "rawserver:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

// maxLine bounds a message, as autoreply's default AUTOREPLY_MAX_LINE does.
const maxLine = 64 << 10

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("rawserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "TCP address to listen on")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "rawserver: unexpected arguments %q\n", fs.Args())
		return errUsage
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	line, _ := json.Marshal(map[string]string{"msg": "listening", "addr": ln.Addr().String()})
	fmt.Fprintf(stderr, "%s\n", line)

	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	stopped := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	defer stopped()
	var n uint64
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			ln.Close()
			wg.Wait()
			return err
		}
		n++
		id := n
		mu.Lock()
		if ctx.Err() != nil {
			mu.Unlock()
			c.Close()
			break
		}
		conns[c] = true
		mu.Unlock()
		wg.Go(func() {
			serve(c, id)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
		})
	}
	wg.Wait()
	return nil
}

// serve answers the lines of c until it closes or sends a line too long.
func serve(c net.Conn, connID uint64) {
	defer c.Close()
	r := bufio.NewReaderSize(c, maxLine+2)
	w := bufio.NewWriterSize(c, 64<<10)
	var g replier
	g.id = connID << 40
	var out []byte
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				w.WriteString("ERROR line too long\n")
				w.Flush()
			}
			return
		}
		line = line[:len(line)-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		out = append(g.reply(out[:0], time.Now(), line), '\n')
		if _, err := w.Write(out); err != nil {
			return
		}
		if r.Buffered() == 0 {
			if w.Flush() != nil {
				return
			}
		}
	}
}

// replier builds reply lines:
//
//	REPLY id=<16 hex> at=<RFC 3339 UTC, ns> len=<n> snippet="<data>" note="raw"
//
// with ids counting up from its start and the date formatted once a second.
type replier struct {
	id     uint64
	sec    int64
	prefix []byte // "2006-01-02T15:04:05." of sec
}

func (g *replier) reply(dst []byte, t time.Time, data []byte) []byte {
	g.id++
	dst = append(dst, "REPLY id="...)
	for shift := 60; shift >= 0; shift -= 4 {
		dst = append(dst, "0123456789abcdef"[(g.id>>uint(shift))&0xf])
	}
	dst = append(dst, " at="...)
	t = t.UTC()
	if s := t.Unix(); s != g.sec || g.prefix == nil {
		g.prefix = t.AppendFormat(g.prefix[:0], "2006-01-02T15:04:05.")
		g.sec = s
	}
	dst = append(dst, g.prefix...)
	var ns [9]byte
	for i, v := 8, t.Nanosecond(); i >= 0; i, v = i-1, v/10 {
		ns[i] = byte('0' + v%10)
	}
	dst = append(dst, ns[:]...)
	dst = append(dst, "Z len="...)
	dst = strconv.AppendInt(dst, int64(len(data)), 10)
	dst = append(dst, " snippet="...)
	dst = appendSnippet(dst, data)
	return append(dst, ` note="raw"`...)
}

// appendSnippet quotes data as the spec says: whole when at most 32 bytes,
// else its first and last 16 bytes around "...", escaped as %q.
func appendSnippet(dst, data []byte) []byte {
	if len(data) <= 32 {
		return strconv.AppendQuote(dst, string(data))
	}
	dst = strconv.AppendQuote(dst, string(data[:16]))
	dst = append(dst[:len(dst)-1], "..."...)
	n := len(dst)
	dst = strconv.AppendQuote(dst, string(data[len(data)-16:]))
	return append(dst[:n], dst[n+1:]...)
}
