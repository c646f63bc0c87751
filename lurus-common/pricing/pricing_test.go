package pricing

import (
	"math"
	"testing"
)

func TestCost(t *testing.T) {
	p := Price{InputMicrosPerMTok: 2_500_000, OutputMicrosPerMTok: 10_000_000, CachedInputMicrosPerMTok: 1_250_000, CacheWriteMicrosPerMTok: 3_750_000}
	tests := []struct {
		name string
		tok  Tokens
		want int64
	}{
		{"zero", Tokens{}, 0},
		// 1000 input at $2.50/M = 2500 µ$; 500 output at $10/M = 5000 µ$
		{"plain", Tokens{Prompt: 1000, Completion: 500}, 7500},
		// 1000 prompt of which 400 cached, 100 written: 500*2.5 + 400*1.25 + 100*3.75 = 1250+500+375
		{"cache", Tokens{Prompt: 1000, Cached: 400, CacheWrite: 100}, 2125},
		{"rounds up", Tokens{Prompt: 1}, 3},
		{"negative ignored", Tokens{Prompt: -5, Completion: -1}, 0},
		{"cached beyond prompt", Tokens{Prompt: 10, Cached: 20}, 25},
		{"huge saturates", Tokens{Prompt: math.MaxInt64, Completion: math.MaxInt64}, math.MaxInt64},
	}
	for _, tt := range tests {
		if got := p.Cost(tt.tok); got != tt.want {
			t.Errorf("%s: Cost = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestApplyMultiplier(t *testing.T) {
	if ApplyMultiplier(1000, 15000) != 1500 || ApplyMultiplier(1, 5000) != 1 || ApplyMultiplier(3, 5000) != 2 || ApplyMultiplier(7, BasisPoints) != 7 {
		t.Fatal("multiplier arithmetic")
	}
}

func TestTableLookup(t *testing.T) {
	tab := NewTable([]Price{
		{ID: "all-gpt", ModelPattern: "gpt-*", InputMicrosPerMTok: 1},
		{ID: "4o", ModelPattern: "gpt-4o*", InputMicrosPerMTok: 2},
		{ID: "exact", ModelPattern: "gpt-4o-mini", InputMicrosPerMTok: 3},
	}, nil, map[string]int64{"vip": 8000}, 1)
	for model, want := range map[string]string{"gpt-4o-mini": "exact", "gpt-4o-2024": "4o", "gpt-3.5": "all-gpt"} {
		if p, ok := tab.Lookup(model); !ok || p.ID != want {
			t.Errorf("Lookup(%s) = %v %v, want %s", model, p.ID, ok, want)
		}
	}
	if _, ok := tab.Lookup("claude-3"); ok {
		t.Error("unpriced model found without default")
	}
	withDef := NewTable(nil, &Price{ID: "def"}, nil, 1)
	if p, ok := withDef.Lookup("claude-3"); !ok || p.ID != "def" {
		t.Error("default not used")
	}
	cost, ok := NewTable([]Price{{ModelPattern: "m", InputMicrosPerMTok: 1_000_000}}, nil, map[string]int64{"vip": 8000}, 1).Cost("m", "vip", Tokens{Prompt: 1000})
	if !ok || cost != 800 {
		t.Fatalf("group cost = %d %v", cost, ok)
	}
}
