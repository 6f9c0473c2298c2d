package lab

import (
	"fmt"
	"strings"
)

// Impairment is one container's link impairment in force: what
// `impair list -json` prints, and what the impair tool PUTs to the
// dashboard's /api/impairments after every change (the whole list each
// time). Rate, Delay and Jitter are empty when not set; Since is RFC 3339.
type Impairment struct {
	Service     string  `json:"service"`
	Container   string  `json:"container"`
	LossPercent float64 `json:"loss_percent"`
	Rate        string  `json:"rate"`
	Delay       string  `json:"delay"`
	Jitter      string  `json:"jitter"`
	Since       string  `json:"since"`
}

// Describe says in a few words what i does: "loss 10%, rate 2mbit, delay
// 40ms, jitter 10ms", or "nothing".
func (i Impairment) Describe() string {
	var parts []string
	if i.LossPercent > 0 {
		parts = append(parts, fmt.Sprintf("loss %g%%", i.LossPercent))
	}
	for _, p := range [][2]string{{"rate", i.Rate}, {"delay", i.Delay}, {"jitter", i.Jitter}} {
		if p[1] != "" {
			parts = append(parts, p[0]+" "+p[1])
		}
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}
