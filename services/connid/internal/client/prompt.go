package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/socklab/socklab/services/connid/proto"
)

// Prompt asks for a new connection ID.
const Prompt = "Enter a new connection ID: "

// maxEntries bounds how many invalid entries one prompt accepts.
const maxEntries = 5

// Prompter answers the client's requests for a new ID: with the IDs of a
// list first, then random ones if Auto, then what a person types.
type Prompter struct {
	// IDs answer the first prompts, in order.
	IDs []string
	// Auto answers with random IDs once IDs are used up.
	Auto bool
	// Random makes a random ID; nil means 1 to 9 decimal digits.
	Random func() string
	// In is read a line per answer when neither IDs nor Auto answer.
	In *bufio.Reader
	// Out receives the prompt.
	Out io.Writer
	// Echo writes each answer after the prompt, for answers not typed at
	// a terminal, so the output reads the same either way.
	Echo bool
	// Diag receives complaints about invalid entries.
	Diag io.Writer
}

// Next prompts and returns a new valid ID. Wired as Client.NextID.
func (p *Prompter) Next(ctx context.Context) (string, error) {
	fmt.Fprint(p.Out, Prompt)
	var id string
	switch {
	case len(p.IDs) > 0:
		id, p.IDs = p.IDs[0], p.IDs[1:]
	case p.Auto:
		id = p.random()
	default:
		return p.read(ctx)
	}
	fmt.Fprintln(p.Out, id)
	return id, nil
}

func (p *Prompter) random() string {
	if p.Random != nil {
		return p.Random()
	}
	return strconv.FormatUint(rand.Uint64N(1_000_000_000), 10)
}

// read takes lines from In until one is a valid ID.
func (p *Prompter) read(ctx context.Context) (string, error) {
	if p.In == nil {
		return "", errors.New("no input")
	}
	for range maxEntries {
		line, err := p.readLine(ctx)
		if err != nil {
			if p.Echo {
				fmt.Fprintln(p.Out)
			}
			if errors.Is(err, io.EOF) {
				return "", errors.New("standard input ended")
			}
			return "", err
		}
		id := strings.TrimSpace(line)
		if p.Echo {
			fmt.Fprintln(p.Out, id)
		}
		if err := CheckID(id); err != nil {
			fmt.Fprintf(p.Diag, "connid-client: %v\n", err)
			fmt.Fprint(p.Out, Prompt)
			continue
		}
		return id, nil
	}
	return "", fmt.Errorf("%d invalid entries", maxEntries)
}

// readLine reads one line, giving up when ctx ends: a person at the prompt
// may press Ctrl-C. The reading goroutine then stays blocked until input
// comes or the process exits.
func (p *Prompter) readLine(ctx context.Context) (string, error) {
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := p.In.ReadString('\n')
		if err == io.EOF && line != "" {
			err = nil // a last line without "\n"
		}
		ch <- result{line, err}
	}()
	select {
	case r := <-ch:
		return r.line, r.err
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
}

// CheckID explains why id cannot be a connection ID, for a person.
func CheckID(id string) error {
	if proto.ValidID(id) != nil {
		return fmt.Errorf("%q is not a connection ID: want 1 to %d printable ASCII characters without spaces", id, proto.MaxIDLen)
	}
	return nil
}
