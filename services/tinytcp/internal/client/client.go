// Package client runs TinyTCP conversations and prints them in the seed's
// form:
//
//	CONNECT to 127.0.0.1:40000
//	<- WELCOME, I'm TinyServer not pressure
//	-> TIME
//	<- TIME 2025-09-12T17:24:13-05:00
//
// It checks every line the server sends against package proto, so a
// session either goes as expected or ends with an error that says why.
package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/socklab/socklab/services/tinytcp/proto"
)

// Errors a session can end with; each returned error wraps one of them.
var (
	// ErrUnreachable: the connection could not be established.
	ErrUnreachable = errors.New("server unreachable")
	// ErrClosed: the server closed the connection before it should have.
	ErrClosed = errors.New("connection closed early")
	// ErrTimeout: no complete line from the server within the timeout.
	ErrTimeout = errors.New("no reply in time")
	// ErrProtocol: the server sent a line that breaks the protocol.
	ErrProtocol = errors.New("protocol error")
	// ErrBusy: the server refused the connection with ERROR SERVER_BUSY.
	ErrBusy = errors.New("server busy")
	// ErrRefused: the server answered at least one command with ERROR.
	ErrRefused = errors.New("command refused")
)

// MaxReplyBytes bounds a reply line the client accepts.
const MaxReplyBytes = 64 << 10

// DemoCommands is the seed's demo: TIME on a first connection, ECHO on a
// second (QUIT ends a connection; the next command opens a new one).
var DemoCommands = []string{"TIME", "QUIT", "ECHO Hello from client", "QUIT"}

// Client runs conversations with one server.
type Client struct {
	// Addr is the server's HOST:PORT, printed as given.
	Addr string
	// Timeout bounds connecting and the wait for each reply.
	Timeout time.Duration
	// Out receives the conversation.
	Out io.Writer
	// Interactive prompts "-> " before each command instead of printing the
	// command (the terminal shows what the user types), connects at once,
	// and ends after BYE.
	Interactive bool
	// Dial opens a connection; nil means a net.Dialer bounded by Timeout.
	// Tests give one returning net.Pipe ends.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// A Source yields the commands to send, one line each without its line
// end. Next returns io.EOF after the last.
type Source interface {
	Next(ctx context.Context) (string, error)
}

// Run sends every command of src, each once its previous one is answered,
// and prints the conversation. It connects before the first command and
// again before a command that follows BYE; at the end of src it ends an
// open connection with QUIT. It returns nil when every command got its
// reply and none was refused.
func (c *Client) Run(ctx context.Context, src Source) error {
	var cn *conn
	defer func() {
		if cn != nil {
			cn.close()
		}
	}()
	refused := 0
	for {
		if c.Interactive {
			if cn == nil {
				var err error
				if cn, err = c.connect(ctx); err != nil {
					return err
				}
			}
			fmt.Fprint(c.Out, "-> ")
		}
		cmd, err := src.Next(ctx)
		last := false
		switch {
		case errors.Is(err, io.EOF):
			if cn == nil {
				return refusedError(refused)
			}
			cmd, last = proto.Quit.String(), true
			if c.Interactive {
				fmt.Fprintln(c.Out, cmd) // completes the prompt
			}
		case err != nil:
			return err
		}
		if cn == nil {
			if cn, err = c.connect(ctx); err != nil {
				return err
			}
		}
		if !c.Interactive {
			fmt.Fprintf(c.Out, "-> %s\n", display(cmd))
		}
		r, raw, err := cn.exchange(ctx, cmd)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.Out, "<- %s\n", display(raw))
		switch {
		case r.Kind == proto.KindBye:
			cn.close()
			cn = nil
			if c.Interactive || last {
				return refusedError(refused)
			}
		case r.Kind == proto.KindError:
			refused++
			if r.Code == proto.LineTooLong {
				return fmt.Errorf("%w: the server closes the connection after ERROR %s", ErrClosed, string(r.Code))
			}
			if last {
				return fmt.Errorf("%w: the server refused to end the session (QUIT answered with ERROR %s)", ErrRefused, string(r.Code))
			}
		}
	}
}

func refusedError(n int) error {
	switch n {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%w: 1 command was answered with ERROR", ErrRefused)
	}
	return fmt.Errorf("%w: %d commands were answered with ERROR", ErrRefused, n)
}

type conn struct {
	c       *Client
	nc      net.Conn
	r       *bufio.Reader
	timeout time.Duration
}

func (c *Client) connect(ctx context.Context) (*conn, error) {
	fmt.Fprintf(c.Out, "CONNECT to %s\n", c.Addr)
	dial := c.Dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: c.Timeout}).DialContext
	}
	nc, err := dial(ctx, "tcp", c.Addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("%w: cannot connect to %s: %v", ErrUnreachable, c.Addr, unwrapOp(err))
	}
	cn := &conn{c: c, nc: nc, r: bufio.NewReaderSize(nc, MaxReplyBytes), timeout: c.Timeout}
	raw, err := cn.readLine(ctx, "its banner")
	if err != nil {
		cn.close()
		return nil, err
	}
	r, err := proto.ParseReply([]byte(raw))
	switch {
	case err == nil && r.Kind == proto.KindWelcome:
	case err == nil && r.Kind == proto.KindError && r.Code == proto.ServerBusy:
		fmt.Fprintf(c.Out, "<- %s\n", display(raw))
		cn.close()
		return nil, fmt.Errorf("%w: %s serves its maximum of connections (ERROR %s)", ErrBusy, c.Addr, string(r.Code))
	default:
		cn.close()
		return nil, fmt.Errorf("%w: the server greeted with %s, want a line beginning %s",
			ErrProtocol, strconv.Quote(raw), proto.BannerPrefix)
	}
	fmt.Fprintf(c.Out, "<- %s\n", display(raw))
	return cn, nil
}

func (cn *conn) close() { cn.nc.Close() }

// exchange sends cmd and reads and checks its reply.
func (cn *conn) exchange(ctx context.Context, cmd string) (proto.Reply, string, error) {
	cn.nc.SetWriteDeadline(time.Now().Add(cn.timeout))
	if _, err := io.WriteString(cn.nc, cmd+"\n"); err != nil {
		if ctx.Err() != nil {
			return proto.Reply{}, "", context.Cause(ctx)
		}
		return proto.Reply{}, "", fmt.Errorf("%w: sending %s: %v", ErrClosed, strconv.Quote(cmd), unwrapOp(err))
	}
	raw, err := cn.readLine(ctx, "an answer to "+strconv.Quote(cmd))
	if err != nil {
		return proto.Reply{}, "", err
	}
	r, err := proto.ParseReply([]byte(raw))
	if err == nil {
		err = r.Answers([]byte(cmd))
	}
	if err != nil {
		return proto.Reply{}, "", fmt.Errorf("%w: to %s the server sent %v", ErrProtocol, strconv.Quote(cmd), err)
	}
	return r, raw, nil
}

// readLine reads one line from the server, without its line end, within
// the timeout; ctx ending interrupts it.
func (cn *conn) readLine(ctx context.Context, what string) (string, error) {
	cn.nc.SetReadDeadline(time.Now().Add(cn.timeout))
	stop := context.AfterFunc(ctx, func() { cn.nc.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	line, err := cn.r.ReadSlice('\n')
	switch {
	case err == nil:
		line = line[:len(line)-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		return string(line), nil
	case ctx.Err() != nil:
		return "", context.Cause(ctx)
	case errors.Is(err, bufio.ErrBufferFull):
		return "", fmt.Errorf("%w: waiting for %s the server sent a line longer than %d bytes", ErrProtocol, what, MaxReplyBytes)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "", fmt.Errorf("%w: waited %v for %s", ErrTimeout, cn.timeout, what)
	case errors.Is(err, io.EOF) && len(line) > 0:
		return "", fmt.Errorf("%w: the server closed the connection in the middle of %s (got %s)", ErrClosed, what, strconv.Quote(string(line)))
	case errors.Is(err, io.EOF):
		return "", fmt.Errorf("%w: the server closed the connection before %s", ErrClosed, what)
	default:
		return "", fmt.Errorf("%w: waiting for %s: %v", ErrClosed, what, unwrapOp(err))
	}
}

// unwrapOp drops net.OpError's repetition of the addresses and the
// system call's name, which the messages already say in words.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		err = op.Err
	}
	var sys *os.SyscallError
	if errors.As(err, &sys) && sys.Err != nil {
		err = sys.Err
	}
	return err
}

// display returns line as it is when it is printable text, and quoted
// otherwise, so that an echoed escape sequence cannot drive the terminal.
func display(line string) string {
	if !utf8.ValidString(line) {
		return strconv.Quote(line)
	}
	for _, r := range line {
		if !unicode.IsPrint(r) {
			return strconv.Quote(line)
		}
	}
	return line
}

// HostPort returns the address the command-line arguments HOST PORT name,
// or the error that says what is wrong with them.
func HostPort(args []string) (string, error) {
	if len(args) != 2 {
		return "", fmt.Errorf("want HOST PORT, got %d arguments", len(args))
	}
	if p, err := strconv.ParseUint(args[1], 10, 16); err != nil || p == 0 {
		return "", fmt.Errorf("port %q: want a number from 1 to 65535", args[1])
	}
	return net.JoinHostPort(args[0], args[1]), nil
}

// Commands is a Source of fixed commands.
type Commands []string

// Next returns the next command.
func (s *Commands) Next(context.Context) (string, error) {
	if len(*s) == 0 {
		return "", io.EOF
	}
	cmd := (*s)[0]
	*s = (*s)[1:]
	return cmd, nil
}

// Lines is a Source reading one command per line from a reader (standard
// input), skipping blank lines and dropping a "\r" before the "\n". Reads
// happen in a goroutine so that a cancelled context interrupts a wait for
// input; call Close when done with it.
type Lines struct {
	ch    chan lineOrErr
	done  chan struct{}
	final error // the reader's last word: io.EOF or a read error
	count int
}

type lineOrErr struct {
	line string
	err  error
}

// NewLines starts reading r.
func NewLines(r io.Reader) *Lines {
	s := &Lines{ch: make(chan lineOrErr), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 4096), MaxReplyBytes)
		for sc.Scan() {
			line := strings.TrimSuffix(sc.Text(), "\r")
			if strings.TrimSpace(line) == "" {
				continue
			}
			select {
			case s.ch <- lineOrErr{line: line}:
			case <-s.done:
				return
			}
		}
		err := sc.Err()
		if err == nil {
			err = io.EOF
		} else {
			err = fmt.Errorf("reading commands: %w", err)
		}
		select {
		case s.ch <- lineOrErr{err: err}:
		case <-s.done:
		}
	}()
	return s
}

// Next returns the next non-blank line.
func (s *Lines) Next(ctx context.Context) (string, error) {
	if s.final != nil {
		return "", s.final
	}
	select {
	case l := <-s.ch:
		if l.err != nil {
			s.final = l.err
			return "", l.err
		}
		s.count++
		return l.line, nil
	case <-s.done:
		return "", io.EOF
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
}

// Count reports how many commands Next has returned.
func (s *Lines) Count() int { return s.count }

// Close stops the reading goroutine once its current read returns.
func (s *Lines) Close() {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
}
