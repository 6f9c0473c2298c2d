package proto

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// A header declaring a 65535-byte body followed by a few bytes must not
// make the reader allocate the declared length (issue 16, finding 2): the
// buffer grows with the bytes that came.
func TestReadMessageDoesNotTrustDeclaredLength(t *testing.T) {
	tests := []struct {
		name    string
		sent    int // body bytes actually sent
		wantCap int // most the buffer may hold
	}{
		{"header only", 0, 512},
		{"100 bytes", 100, 512},
		{"1000 bytes", 1000, 2048},
		{"40000 bytes", 40000, 2 * 40000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := AppendHeader(nil, Header{Type: TypeEcho, Len: MaxBody, ID: 1})
			msg = append(msg, bytes.Repeat([]byte{'x'}, tt.sent)...)
			_, buf, err := ReadMessage(bytes.NewReader(msg), nil)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("ReadMessage of a cut body: %v, want %v", err, io.ErrUnexpectedEOF)
			}
			if cap(buf) > tt.wantCap {
				t.Errorf("ReadMessage after %d of %d body bytes holds %d bytes, want at most %d",
					tt.sent, MaxBody, cap(buf), tt.wantCap)
			}
		})
	}
}

// The growth is asked of the caller's budget before it happens, and a
// refusal ends the read.
func TestReadMessageGrowBudget(t *testing.T) {
	body := bytes.Repeat([]byte{'y'}, 5000)
	msg := AppendEcho(nil, 7, body)
	var asked int
	m, _, err := ReadMessageGrow(bytes.NewReader(msg), nil, func(from, to int) error {
		asked += to - from
		return nil
	})
	if err != nil || !bytes.Equal(m.Body, body) {
		t.Fatalf("ReadMessageGrow = %d bytes, %v, want the body", len(m.Body), err)
	}
	if asked < len(msg)-512 || asked > 2*len(msg) {
		t.Errorf("grow asked for %d bytes for a %d-byte message", asked, len(msg))
	}
	errFull := errors.New("full")
	_, _, err = ReadMessageGrow(bytes.NewReader(msg), nil, func(from, to int) error { return errFull })
	if !errors.Is(err, errFull) {
		t.Errorf("ReadMessageGrow with a refusing budget: %v, want %v", err, errFull)
	}
}
