package netserve_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/socklab/socklab/services/kit/netserve"
)

// refLines is the specification of ReadLine: lines end at "\n", one "\r"
// before it is dropped, a line longer than max ends the stream with
// ErrLineTooLong, and bytes after the last "\n" are ErrUnexpectedEOF.
func refLines(data []byte, max int) (lines [][]byte, err error) {
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			if len(data) > max+1 {
				return lines, netserve.ErrLineTooLong
			}
			if len(data) > 0 {
				return lines, io.ErrUnexpectedEOF
			}
			return lines, io.EOF
		}
		line := bytes.TrimSuffix(data[:i], []byte("\r"))
		if len(line) > max {
			return lines, netserve.ErrLineTooLong
		}
		lines = append(lines, line)
		data = data[i+1:]
	}
}

func FuzzReadLine(f *testing.F) {
	f.Add([]byte("a\nb\r\n\n"), uint16(4), uint16(1))
	f.Add([]byte("abcdef\n"), uint16(3), uint16(2))
	f.Add([]byte("no end"), uint16(100), uint16(3))
	f.Add([]byte("\r\r\n\x00\xff\n"), uint16(1), uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, max16, cut16 uint16) {
		max := int(max16%200) + 1
		cut := 0
		if len(data) > 0 {
			cut = int(cut16) % (len(data) + 1)
		}
		type result struct {
			lines [][]byte
			err   error
		}
		res := make(chan result, 1)
		srv := &netserve.Server{MaxLineBytes: max, Handler: netserve.HandlerFunc(func(_ context.Context, c *netserve.Conn) {
			var r result
			for {
				line, err := c.ReadLine()
				if err != nil {
					r.err = err
					break
				}
				r.lines = append(r.lines, bytes.Clone(line))
			}
			res <- r
		})}
		cli, sc := net.Pipe()
		go srv.ServeConn(sc)
		// The input arrives in two writes split anywhere, as TCP may.
		cli.SetDeadline(time.Now().Add(5 * time.Second))
		cli.Write(data[:cut])
		cli.Write(data[cut:])
		cli.Close()
		got := <-res

		wantLines, wantErr := refLines(data, max)
		if errors.Is(wantErr, netserve.ErrLineTooLong) && !errors.Is(got.err, netserve.ErrLineTooLong) {
			// An unterminated line over max is only detected once the
			// reader's buffer fills; over a closed pipe it is EOF.
			if !(bytes.IndexByte(data[len(data)-min(len(data), max+2):], '\n') < 0 && errors.Is(got.err, io.ErrUnexpectedEOF)) {
				t.Fatalf("ReadLine(%q, max %d) err = %v, want %v", data, max, got.err, wantErr)
			}
		} else if !errors.Is(got.err, wantErr) && !(errors.Is(wantErr, io.EOF) && errors.Is(got.err, io.EOF)) {
			t.Fatalf("ReadLine(%q, max %d) err = %v, want %v", data, max, got.err, wantErr)
		}
		if len(got.lines) != len(wantLines) {
			t.Fatalf("ReadLine(%q, max %d) = %q, want %q", data, max, got.lines, wantLines)
		}
		for i := range wantLines {
			if !bytes.Equal(got.lines[i], wantLines[i]) {
				t.Fatalf("ReadLine(%q, max %d) line %d = %q, want %q", data, max, i, got.lines[i], wantLines[i])
			}
		}
	})
}
