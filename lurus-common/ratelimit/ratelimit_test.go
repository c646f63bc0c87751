package ratelimit

import (
	"go/parser"
	"go/token"
	"io/fs"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	ok := Subject{ID: KeySubject("k"), Limits: Limits{RPM: 1}}
	tests := []struct {
		name string
		r    Request
		ok   bool
	}{
		{"fine", Request{ID: "r", Tokens: 5, Subjects: []Subject{ok, {ID: UserSubject("u")}}}, true},
		{"no subjects", Request{ID: "r"}, true},
		{"no id", Request{Subjects: []Subject{ok}}, false},
		{"negative tokens", Request{ID: "r", Tokens: -1, Subjects: []Subject{ok}}, false},
		{"empty subject", Request{ID: "r", Subjects: []Subject{{}}}, false},
		{"subject twice", Request{ID: "r", Subjects: []Subject{ok, ok}}, false},
		{"hash tag in subject", Request{ID: "r", Subjects: []Subject{{ID: "key:{x}"}}}, false},
		{"negative limit", Request{ID: "r", Subjects: []Subject{{ID: "key:k", Limits: Limits{TPM: -1}}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.r.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestLimited(t *testing.T) {
	r := Request{ID: "r", Subjects: []Subject{{ID: KeySubject("k")}, {ID: UpstreamKeySubject("p")}}}
	if r.Limited() {
		t.Fatal("no limits, but Limited")
	}
	r.Subjects[1].Limits.Concurrency = 1
	if !r.Limited() {
		t.Fatal("a concurrency limit, but not Limited")
	}
}

func TestWindows(t *testing.T) {
	tests := []struct {
		at    time.Time
		w     int64
		reset time.Duration
	}{
		{time.Unix(1_800_000_000, 0), 30_000_000, time.Minute},
		{time.Unix(1_800_000_059, 500e6), 30_000_000, 500 * time.Millisecond},
		{time.Unix(1_800_000_060, 0), 30_000_001, time.Minute},
		{time.Unix(-1, 0), -1, time.Second},
	}
	for _, tt := range tests {
		if w := WindowOf(tt.at); w != tt.w {
			t.Errorf("WindowOf(%v) = %d, want %d", tt.at.Unix(), w, tt.w)
		}
		if r := UntilReset(tt.at); r != tt.reset {
			t.Errorf("UntilReset(%v) = %v, want %v", tt.at.Unix(), r, tt.reset)
		}
	}
}

// FuzzWindow: every instant lies in its window, and the reset is in (0, 1m].
func FuzzWindow(f *testing.F) {
	f.Add(int64(1_800_000_010), int64(0))
	f.Add(int64(-61), int64(999_999_999))
	f.Fuzz(func(t *testing.T, sec, nsec int64) {
		if sec < -1<<40 || sec > 1<<40 || nsec < 0 || nsec >= 1e9 {
			t.Skip()
		}
		at := time.Unix(sec, nsec)
		w := WindowOf(at)
		if at.Before(WindowEnd(w-1)) || !at.Before(WindowEnd(w)) {
			t.Fatalf("%v not in window %d", at, w)
		}
		if r := UntilReset(at); r <= 0 || r > time.Minute {
			t.Fatalf("UntilReset = %v", r)
		}
	})
}

// TestNoDriverImports keeps the contract package free of drivers: the
// Redis store lives in ratelimit/redisstore.
func TestNoDriverImports(t *testing.T) {
	pkgs, err := parser.ParseDir(token.NewFileSet(), ".", func(fi fs.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkgs {
		for name, f := range p.Files {
			for _, imp := range f.Imports {
				if strings.Contains(imp.Path.Value, ".") {
					t.Errorf("%s imports %s: only the standard library belongs here", name, imp.Path.Value)
				}
			}
		}
	}
}

func TestWithin(t *testing.T) {
	tests := []struct {
		name string
		l, c Limits
		want Limits
	}{
		{"both unlimited", Limits{}, Limits{}, Limits{}},
		{"only the cap", Limits{}, Limits{RPM: 5, TPM: 9, Concurrency: 2}, Limits{RPM: 5, TPM: 9, Concurrency: 2}},
		{"only the limit", Limits{RPM: 5}, Limits{}, Limits{RPM: 5}},
		{"limit above the cap is clamped", Limits{RPM: 50, TPM: 1, Concurrency: 3}, Limits{RPM: 5, TPM: 10, Concurrency: 3},
			Limits{RPM: 5, TPM: 1, Concurrency: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.l.Within(tt.c); got != tt.want {
				t.Fatalf("%+v.Within(%+v) = %+v, want %+v", tt.l, tt.c, got, tt.want)
			}
		})
	}
}

func TestCheckLimit(t *testing.T) {
	for v, ok := range map[int64]bool{0: true, 1: true, MaxLimit: true, MaxLimit + 1: false, -1: false} {
		err := CheckLimit("rpm_limit", v)
		if (err == nil) != ok {
			t.Errorf("CheckLimit(%d) = %v, want ok %v", v, err, ok)
		}
		if err != nil && !strings.Contains(err.Error(), "rpm_limit") {
			t.Errorf("CheckLimit(%d) = %v: does not name the field", v, err)
		}
	}
}
