package shape

import (
	"testing"
	"time"
)

func TestParseLoss(t *testing.T) {
	tests := []struct {
		give    string
		want    float64
		wantErr bool
	}{
		{"5%", 5, false}, {"5", 5, false}, {"0.5%", 0.5, false}, {"100%", 100, false}, {"0%", 0, false},
		{"101%", 0, true}, {"-1%", 0, true}, {"five", 0, true}, {"", 0, true}, {"NaN", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseLoss(tt.give)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseLoss(%q) = %v, %v, want %v (error %v)", tt.give, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseRate(t *testing.T) {
	tests := []struct {
		give    string
		want    uint64
		wantErr bool
	}{
		{"2mbit", 2_000_000, false}, {"500kbit", 500_000, false}, {"1gbit", 1e9, false},
		{"1.5mbit", 1_500_000, false}, {"100kbps", 800_000, false}, {"9600bit", 9600, false},
		{"2MBIT", 2_000_000, false},
		{"2000", 0, true}, {"mbit", 0, true}, {"-2mbit", 0, true}, {"0mbit", 0, true}, {"2 furlongs", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseRate(tt.give)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseRate(%q) = %v, %v, want %v (error %v)", tt.give, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestFormatRate(t *testing.T) {
	tests := []struct {
		give uint64
		want string
	}{{2_000_000, "2mbit"}, {1_500_000, "1500kbit"}, {1e9, "1gbit"}, {9600, "9600bit"}, {8001, "8001bit"}}
	for _, tt := range tests {
		if got := FormatRate(tt.give); got != tt.want {
			t.Errorf("FormatRate(%d) = %q, want %q", tt.give, got, tt.want)
		}
		if back, err := ParseRate(FormatRate(tt.give)); err != nil || back != tt.give {
			t.Errorf("ParseRate(FormatRate(%d)) = %d, %v", tt.give, back, err)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		give    Settings
		wantErr bool
	}{
		{Settings{}, false},
		{Settings{LossPercent: 10, Rate: 2e6, Delay: 40 * time.Millisecond, Jitter: 10 * time.Millisecond}, false},
		{Settings{LossPercent: 101}, true},
		{Settings{Rate: 100}, true},
		{Settings{Jitter: time.Millisecond}, true},
		{Settings{Delay: time.Millisecond, Jitter: 2 * time.Millisecond}, true},
		{Settings{Delay: 2 * time.Minute}, true},
	}
	for _, tt := range tests {
		if err := tt.give.Validate(); (err != nil) != tt.wantErr {
			t.Errorf("%+v.Validate() = %v, want error %v", tt.give, err, tt.wantErr)
		}
	}
}
