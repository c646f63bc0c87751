package config

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

type sample struct {
	Addr    string        `yaml:"addr"`
	Timeout time.Duration `yaml:"timeout"`
	Workers int           `yaml:"workers"`
	DB      struct {
		URL string `yaml:"url"`
	} `yaml:"db"`
}

func (s *sample) SetDefaults() {
	s.Addr = ":8080"
	s.Workers = 4
}

func (s *sample) Validate() error {
	if s.Workers <= 0 {
		return errString("workers must be positive")
	}
	return nil
}

type errString string

func (e errString) Error() string { return string(e) }

func TestDecode(t *testing.T) {
	t.Setenv("CFG_TEST_DB", "postgres://x")
	t.Setenv("CFG_TEST_EMPTY", "")
	tests := []struct {
		name    string
		yaml    string
		want    sample
		wantErr string
	}{
		{name: "defaults kept", yaml: "timeout: 3s\n", want: sample{Addr: ":8080", Workers: 4, Timeout: 3 * time.Second}},
		{name: "env expanded", yaml: "db:\n  url: ${CFG_TEST_DB}\n", want: sample{Addr: ":8080", Workers: 4, DB: struct {
			URL string `yaml:"url"`
		}{"postgres://x"}}},
		{name: "env default", yaml: "addr: ${CFG_TEST_UNSET:-:9000}\n", want: sample{Addr: ":9000", Workers: 4}},
		{name: "empty env takes default", yaml: "addr: ${CFG_TEST_EMPTY:-:9001}\n", want: sample{Addr: ":9001", Workers: 4}},
		{name: "dollar escape", yaml: "addr: a$$b\n", want: sample{Addr: "a$b", Workers: 4}},
		{name: "unknown key", yaml: "adr: x\n", wantErr: "field adr not found"},
		{name: "missing env", yaml: "addr: ${CFG_TEST_UNSET}\n", wantErr: "CFG_TEST_UNSET"},
		{name: "validate", yaml: "workers: 0\n", wantErr: "workers must be positive"},
		{name: "unterminated", yaml: "addr: ${X\n", wantErr: "unterminated"},
		{name: "empty file", yaml: "", want: sample{Addr: ":8080", Workers: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got sample
			err := Decode([]byte(tt.yaml), &got)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte("workers: 9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var s sample
	if err := Load(p, &s); err != nil || s.Workers != 9 {
		t.Fatalf("Load = %v, %+v", err, s)
	}
	if err := Load(filepath.Join(t.TempDir(), "none.yaml"), &s); err == nil {
		t.Fatal("missing file loaded")
	}
}

func TestSecret(t *testing.T) {
	t.Setenv("CFG_TEST_SECRET", "dev-only-token")
	t.Setenv("LURUS_ENV", "production")
	if _, err := Secret("CFG_TEST_SECRET"); err == nil {
		t.Fatal("dev secret accepted outside dev")
	}
	t.Setenv("LURUS_ENV", "dev")
	if v, err := Secret("CFG_TEST_SECRET"); err != nil || v != "dev-only-token" {
		t.Fatalf("dev secret in dev: %q %v", v, err)
	}
	t.Setenv("LURUS_ENV", "")
	t.Setenv("CFG_TEST_SECRET", "s3cr3t-real")
	if _, err := Secrets("CFG_TEST_SECRET", "CFG_TEST_NOT_SET"); err == nil || !strings.Contains(err.Error(), "CFG_TEST_NOT_SET") {
		t.Fatalf("missing secret: %v", err)
	}
}

func TestApplyGCPercent(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	t.Setenv("GOGC", "")
	if !ApplyGCPercent(300) || debug.SetGCPercent(300) != 300 {
		t.Fatal("config value not applied")
	}
	if ApplyGCPercent(0) {
		t.Fatal("0 must leave the setting alone")
	}
	t.Setenv("GOGC", "50")
	if ApplyGCPercent(200) || debug.SetGCPercent(300) != 300 {
		t.Fatal("GOGC from the environment must win")
	}
}

func TestDefault(t *testing.T) {
	n, s, d := 0, "set", 2*time.Second
	Default(&n, 7)
	Default(&s, "other")
	Default(&d, time.Minute)
	if n != 7 || s != "set" || d != 2*time.Second {
		t.Fatalf("Default: %d %q %v", n, s, d)
	}
}
