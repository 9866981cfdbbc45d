package retry

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	valid := DefaultPolicy()
	with := func(mod func(*Policy)) Policy { p := valid; mod(&p); return p }
	tests := []struct {
		name       string
		p          Policy
		wantFields []string // nil: valid
	}{
		{"default", valid, nil},
		{"no retry, zero backoff", Policy{MaxAttempts: 1}, nil},
		{"constant backoff", with(func(p *Policy) { p.Multiplier = 1; p.Max = p.Initial }), nil},
		{"full jitter", with(func(p *Policy) { p.Jitter = 1 }), nil},
		{"zero value", Policy{}, []string{"MaxAttempts"}},
		{"negative attempts", with(func(p *Policy) { p.MaxAttempts = -1 }), []string{"MaxAttempts"}},
		{"zero initial with retries", with(func(p *Policy) { p.Initial = 0 }), []string{"Initial"}},
		{"negative initial", with(func(p *Policy) { p.Initial = -time.Second }), []string{"Initial"}},
		{"negative initial without retries", Policy{MaxAttempts: 1, Initial: -1}, []string{"Initial"}},
		{"max below initial", with(func(p *Policy) { p.Max = p.Initial / 2 }), []string{"Max"}},
		{"negative max", with(func(p *Policy) { p.Max = -1 }), []string{"Max"}},
		{"multiplier below 1", with(func(p *Policy) { p.Multiplier = 0.5 }), []string{"Multiplier"}},
		{"multiplier NaN", with(func(p *Policy) { p.Multiplier = math.NaN() }), []string{"Multiplier"}},
		{"multiplier Inf", with(func(p *Policy) { p.Multiplier = math.Inf(1) }), []string{"Multiplier"}},
		{"jitter above 1", with(func(p *Policy) { p.Jitter = 1.5 }), []string{"Jitter"}},
		{"jitter negative", with(func(p *Policy) { p.Jitter = -0.1 }), []string{"Jitter"}},
		{"jitter NaN", with(func(p *Policy) { p.Jitter = math.NaN() }), []string{"Jitter"}},
		{"several", Policy{MaxAttempts: 0, Initial: -1, Max: -1, Multiplier: -1, Jitter: 2},
			[]string{"MaxAttempts", "Initial", "Max", "Multiplier", "Jitter"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.wantFields == nil {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("Validate = %v, want errors.Is ErrInvalidPolicy", err)
			}
			var first *PolicyError
			if !errors.As(err, &first) || first.Field != tt.wantFields[0] {
				t.Fatalf("errors.As first = %+v, want field %s", first, tt.wantFields[0])
			}
			var fields []string
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				fields = append(fields, e.(*PolicyError).Field)
			}
			if !slices.Equal(fields, tt.wantFields) {
				t.Fatalf("fields = %v, want %v (%v)", fields, tt.wantFields, err)
			}
		})
	}
}

func TestDelayNoJitter(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name string
		p    Policy
		want []time.Duration // waits after attempts 1, 2, ...
	}{
		{"doubling, capped", Policy{MaxAttempts: 7, Initial: 100 * ms, Max: time.Second, Multiplier: 2},
			[]time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second}},
		{"constant", Policy{MaxAttempts: 4, Initial: 50 * ms, Max: 50 * ms, Multiplier: 1},
			[]time.Duration{50 * ms, 50 * ms, 50 * ms}},
		{"x1.5", Policy{MaxAttempts: 5, Initial: 100 * ms, Max: time.Hour, Multiplier: 1.5},
			[]time.Duration{100 * ms, 150 * ms, 225 * ms, 337500 * time.Microsecond}},
		{"no overflow far out", Policy{MaxAttempts: 2000, Initial: time.Second, Max: time.Minute, Multiplier: 10},
			[]time.Duration{time.Second, 10 * time.Second, time.Minute, time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []time.Duration
			for n := 1; n <= len(tt.want); n++ {
				got = append(got, tt.p.delay(n, 0.999)) // u is irrelevant without jitter
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("delays = %v, want %v", got, tt.want)
			}
			if d := tt.p.delay(1500, 0); d > tt.p.Max || d <= 0 {
				t.Fatalf("delay(1500) = %v, want within (0, Max]", d)
			}
		})
	}
}

func TestDelayJitterBounds(t *testing.T) {
	p := Policy{MaxAttempts: 10, Initial: time.Second, Max: 8 * time.Second, Multiplier: 2, Jitter: 0.5}
	r := rand.New(rand.NewPCG(1, 2))
	for n := 1; n < 10; n++ {
		base := min(time.Second<<(n-1), p.Max)
		distinct := map[time.Duration]bool{}
		for range 200 {
			d := p.delay(n, r.Float64())
			if d < base/2 || d > base {
				t.Fatalf("attempt %d: delay %v outside [%v, %v]", n, d, base/2, base)
			}
			distinct[d] = true
		}
		if len(distinct) < 100 {
			t.Fatalf("attempt %d: only %d distinct delays in 200: jitter not applied", n, len(distinct))
		}
	}
}

// Delay is the wait Do makes, for loops that pace themselves.
func TestPolicyDelay(t *testing.T) {
	p := Policy{MaxAttempts: 5, Initial: time.Second, Max: 5 * time.Second, Multiplier: 2, Jitter: 0.5}
	for _, tc := range []struct {
		n    int
		u    float64
		want time.Duration
	}{
		{0, 0, time.Second}, // below 1 counts as 1
		{1, 0, time.Second},
		{2, 0, 2 * time.Second},
		{3, 0, 4 * time.Second},
		{4, 0, 5 * time.Second}, // capped at Max
		{2, 0.5, 1500 * time.Millisecond},
	} {
		if got := p.Delay(tc.n, tc.u); got != tc.want {
			t.Errorf("Delay(%d, %v) = %s, want %s", tc.n, tc.u, got, tc.want)
		}
	}
}
