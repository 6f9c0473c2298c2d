package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/socklab/socklab/services/kit/lab"
)

// Limits on what the impair tool may PUT.
const (
	MaxImpairments    = 256
	maxImpairmentText = 256
)

// Impairment is one link's impairment in force, as the impair tool sends
// it (the lab map's contract).
type Impairment = lab.Impairment

// describe says what i does in a few words: "loss 5%, delay 50ms ±10ms,
// rate 1mbit".
func describe(i Impairment) string {
	var parts []string
	if i.LossPercent > 0 {
		parts = append(parts, fmt.Sprintf("loss %g%%", i.LossPercent))
	}
	if i.Delay != "" {
		d := "delay " + i.Delay
		if i.Jitter != "" {
			d += " ±" + i.Jitter
		}
		parts = append(parts, d)
	}
	if i.Rate != "" {
		parts = append(parts, "rate "+i.Rate)
	}
	if len(parts) == 0 {
		return "impaired"
	}
	return strings.Join(parts, ", ")
}

// Impairments are those in force, as last PUT.
type Impairments struct {
	// Updated is when the list was last PUT (nil: never).
	Updated *time.Time   `json:"updated"`
	List    []Impairment `json:"list"`
}

func (im Impairments) clone() Impairments {
	out := Impairments{Updated: im.Updated, List: slices.Clone(im.List)}
	if out.List == nil {
		out.List = []Impairment{}
	}
	return out
}

// DecodeImpairments reads the JSON array the impair tool PUTs: the whole
// list in force (empty when none). The caller bounds the body's size.
func DecodeImpairments(r io.Reader) ([]Impairment, error) {
	var list []Impairment
	dec := json.NewDecoder(r)
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("impairments: %w", err)
	}
	if dec.More() {
		return nil, errors.New("impairments: more than one JSON value")
	}
	if len(list) > MaxImpairments {
		return nil, fmt.Errorf("impairments: %d entries, at most %d", len(list), MaxImpairments)
	}
	for n, i := range list {
		if i.Service == "" && i.Container == "" {
			return nil, fmt.Errorf("impairment %d: no service or container", n)
		}
		if i.LossPercent < 0 || i.LossPercent > 100 {
			return nil, fmt.Errorf("impairment %d: loss_percent %g is not 0 to 100", n, i.LossPercent)
		}
		for _, s := range []string{i.Service, i.Container, i.Rate, i.Delay, i.Jitter, i.Since} {
			if len(s) > maxImpairmentText {
				return nil, fmt.Errorf("impairment %d: a field longer than %d bytes", n, maxImpairmentText)
			}
		}
	}
	if list == nil {
		list = []Impairment{}
	}
	return list, nil
}
