package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/socklab/socklab/services/filestream/proto"
)

// Kind is what a command line asks for.
type Kind int

// Command kinds.
const (
	KindNone Kind = iota
	KindEcho
	KindFile
	KindStream
	KindQuit
)

// DefaultStreamCount is the packets a stream asks for when the command
// names none: the seed server's default limit.
const DefaultStreamCount = 100

// Command is a parsed command line.
type Command struct {
	Kind   Kind
	Text   string // KindEcho
	Size   uint64 // KindFile
	Stream StreamParams
	// NeedInterval: "stream" alone; the interval comes on the next line.
	NeedInterval bool
}

var integer = regexp.MustCompile(`^[+-]?[0-9]+$`)

// ParseCommand parses one line as the seed's client did: "quit", "stream",
// an integer (a file of that many characters) or anything else (echoed).
// "stream" may carry the interval in milliseconds, the packet count and the
// packet size: "stream 10 50 200".
func ParseCommand(line string) (Command, error) {
	line = strings.TrimSuffix(line, "\r")
	trimmed := strings.TrimSpace(line)
	fields := strings.Fields(trimmed)
	switch {
	case trimmed == "":
		return Command{}, nil
	case strings.EqualFold(trimmed, "quit"):
		return Command{Kind: KindQuit}, nil
	case strings.EqualFold(fields[0], "stream"):
		c := Command{Kind: KindStream, Stream: StreamParams{Count: DefaultStreamCount}}
		if len(fields) == 1 {
			c.NeedInterval = true
			return c, nil
		}
		return c, c.streamArgs(fields[1:])
	case integer.MatchString(trimmed):
		n, err := strconv.ParseUint(strings.TrimPrefix(trimmed, "+"), 10, 64)
		switch {
		case strings.HasPrefix(trimmed, "-"):
			return Command{}, errors.New("a file size must not be negative")
		case err != nil:
			return Command{}, fmt.Errorf("file size %s is too large", trimmed)
		}
		return Command{Kind: KindFile, Size: n}, nil
	}
	return Command{Kind: KindEcho, Text: line}, nil
}

func (c *Command) streamArgs(args []string) error {
	if len(args) > 3 {
		return errors.New("usage: stream [interval-ms [count [size]]]")
	}
	ms, err := strconv.ParseFloat(args[0], 64)
	if err != nil || ms < 0 || ms > float64(proto.MaxInterval/time.Millisecond) {
		return fmt.Errorf("stream interval %q: want milliseconds from 0 to %d", args[0], proto.MaxInterval/time.Millisecond)
	}
	c.Stream.Interval = time.Duration(ms * float64(time.Millisecond))
	if len(args) > 1 {
		n, err := strconv.ParseUint(args[1], 10, 32)
		if err != nil || n > MaxStreamCount {
			return fmt.Errorf("stream count %q: want a number up to %d", args[1], MaxStreamCount)
		}
		c.Stream.Count = uint32(n)
	}
	if len(args) > 2 {
		n, err := strconv.ParseUint(args[2], 10, 16)
		if err != nil {
			return fmt.Errorf("stream packet size %q: want a number up to 65535", args[2])
		}
		c.Stream.Size = uint16(n)
	}
	return nil
}

// Shell is the client's command loop.
type Shell struct {
	// Prompt makes the shell print prompts (stdin is a terminal).
	Prompt bool
	// PrintFile prints received files instead of only their summary.
	PrintFile bool

	out  io.Writer
	next func() (string, bool)
	err  error // why input ended early
}

// NewShell returns a shell reading commands from cmds when it is not
// empty (the -c flags), else lines from in, and writing to out.
func NewShell(in io.Reader, cmds []string, out io.Writer) *Shell {
	s := &Shell{out: out}
	if len(cmds) > 0 {
		s.next = func() (string, bool) {
			if len(cmds) == 0 {
				return "", false
			}
			c := cmds[0]
			cmds = cmds[1:]
			return c, true
		}
	} else {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 0, 4096), proto.MaxBody+2)
		s.next = func() (string, bool) {
			if !sc.Scan() {
				if err := sc.Err(); err != nil {
					s.err = fmt.Errorf("reading commands: %w", err)
				}
				return "", false
			}
			return sc.Text(), true
		}
	}
	return s
}

// ask prints question when prompting and returns the next line.
func (s *Shell) ask(question string) (string, bool) {
	if s.Prompt {
		fmt.Fprint(s.out, question)
	}
	return s.next()
}

// ChooseServer picks the server as the seed did: with a prompt, it lists
// hosts and asks, Enter picking the first; without one it takes the first.
func (s *Shell) ChooseServer(hosts []string) (string, error) {
	if !s.Prompt {
		return hosts[0], nil
	}
	for i, h := range hosts {
		fmt.Fprintf(s.out, "  %d) %s\n", i+1, h)
	}
	for range 5 {
		line, ok := s.ask(fmt.Sprintf("Server (number or host:port) [%s]: ", hosts[0]))
		if !ok {
			return "", io.EOF
		}
		line = strings.TrimSpace(line)
		if line == "" {
			return hosts[0], nil
		}
		if i, err := strconv.Atoi(line); err == nil && i >= 1 && i <= len(hosts) {
			return hosts[i-1], nil
		}
		if err := checkHostPort(line); err != nil {
			fmt.Fprintln(s.out, err)
			continue
		}
		return line, nil
	}
	return "", errors.New("no server chosen")
}

// Help is printed when the shell starts at a terminal.
const Help = `Type text to echo it, a number N for a file of N characters,
"stream [interval-ms [count [size]]]" for a packet stream, or "quit".`

// Run executes commands until "quit", the end of input, or ctx ends. A
// refused request (an ERROR) or a bad command is reported and the loop goes
// on; a broken connection ends it with the error. When ctx ends, a UDP
// session sends QUIT so that the server stops sending.
func (s *Shell) Run(ctx context.Context, sess Session) error {
	if s.Prompt {
		fmt.Fprintln(s.out, Help)
	}
	for {
		line, ok := s.ask("filestream> ")
		if !ok {
			return s.err
		}
		cmd, err := ParseCommand(line)
		if err == nil && cmd.NeedInterval {
			iv, ok := s.ask("interval in ms: ")
			if !ok {
				return s.err
			}
			if args := strings.Fields(iv); len(args) > 0 {
				err = cmd.streamArgs(args)
			} else {
				err = errors.New("stream needs an interval in milliseconds")
			}
			cmd.NeedInterval = false
		}
		if err != nil {
			fmt.Fprintln(s.out, "error:", err)
			continue
		}
		err = s.do(ctx, sess, cmd)
		if ctx.Err() != nil {
			if sess.Protocol() == "udp" {
				qctx, cancel := context.WithTimeout(context.Background(), time.Second)
				sess.Quit(qctx)
				cancel()
			}
			fmt.Fprintln(s.out, "interrupted")
			return nil
		}
		if cmd.Kind == KindQuit && err == nil {
			return nil
		}
		if err != nil {
			var e *proto.ErrorReply
			if errors.As(err, &e) || sess.Protocol() == "udp" {
				fmt.Fprintln(s.out, "error:", err)
				continue
			}
			return err
		}
	}
}

func (s *Shell) do(ctx context.Context, sess Session, cmd Command) error {
	switch cmd.Kind {
	case KindNone:
		return nil
	case KindQuit:
		if err := sess.Quit(ctx); err != nil {
			return err
		}
		fmt.Fprintln(s.out, "bye")
	case KindEcho:
		got, err := sess.Echo(ctx, []byte(cmd.Text))
		if err != nil {
			return err
		}
		fmt.Fprintf(s.out, "echo: %s\n", got)
	case KindFile:
		var sink io.Writer
		if s.PrintFile {
			sink = s.out
		}
		res, err := sess.File(ctx, cmd.Size, sink)
		if err != nil {
			return err
		}
		if s.PrintFile && res.Received > 0 {
			fmt.Fprintln(s.out)
		}
		fmt.Fprintln(s.out, FormatFile(res))
	case KindStream:
		res, err := sess.Stream(ctx, cmd.Stream)
		if err != nil {
			return err
		}
		fmt.Fprintln(s.out, FormatStream(res))
	}
	return nil
}

// FormatFile is the one-line summary of a file.
func FormatFile(r FileResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "file: %d bytes in %s (%s), crc32c %08x", r.Received, ms(r.Elapsed), rate(r.Throughput()), r.GotCRC)
	switch {
	case r.OK():
		b.WriteString(" ok")
	case r.Received != r.Size:
		fmt.Fprintf(&b, " INCOMPLETE: %d of %d bytes", r.Received, r.Size)
	default:
		fmt.Fprintf(&b, " MISMATCH: server says %08x", r.CRC)
	}
	if r.UDP {
		fmt.Fprintf(&b, "; %v", r.Packets)
		if r.TimedOut {
			b.WriteString("; no END (timed out)")
		}
	}
	return b.String()
}

// FormatStream is the one-line summary of a stream.
func FormatStream(r StreamResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "stream: %v in %s; interval %s asked", r.Packets, ms(r.Elapsed), ms(r.Interval))
	if r.Packets.Received > 1 {
		fmt.Fprintf(&b, ", gaps %s mean (%s to %s), jitter %s", ms(r.MeanGap), ms(r.MinGap), ms(r.MaxGap), ms(r.Jitter))
	}
	if r.TimedOut {
		b.WriteString("; no END (timed out)")
	}
	return b.String()
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 3, 64) + "ms"
}

func rate(bps float64) string {
	return strconv.FormatFloat(bps/1e6, 'f', 1, 64) + " MB/s"
}

// ReadHosts reads a hosts file: one host:port a line; blank lines and lines
// starting with # are skipped. The first host is the default.
func ReadHosts(r io.Reader) ([]string, error) {
	var hosts []string
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := checkHostPort(line); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		hosts = append(hosts, line)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(hosts) == 0 {
		return nil, errors.New("no host:port lines")
	}
	return hosts, nil
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 || host == "" {
		return fmt.Errorf("%q is not host:port", s)
	}
	return nil
}
