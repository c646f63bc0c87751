package config

import (
	"fmt"
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

// TestExpandTraps are the two ways substituting into the file's text went
// wrong: a reference inside a comment was expanded (and an unset one
// failed the load), and a value holding ": " or a newline changed the
// document's structure.
func TestExpandTraps(t *testing.T) {
	t.Run("comment not expanded", func(t *testing.T) {
		var got sample
		yaml := "# addr: ${CFG_TEST_UNSET_IN_COMMENT}\naddr: x # ${CFG_TEST_UNSET_TOO}\n"
		if err := Decode([]byte(yaml), &got); err != nil {
			t.Fatalf("a reference in a comment was expanded: %v", err)
		}
		if got.Addr != "x" {
			t.Fatalf("addr = %q", got.Addr)
		}
	})
	for _, v := range []string{"a: b", "a:\n  b", "x\nworkers: 99", "[1, 2]", "{url: evil}", "'q'", "# c", "&a", "${CFG_TEST_DB}"} {
		t.Run("value "+strings.ReplaceAll(v, "\n", `\n`), func(t *testing.T) {
			t.Setenv("CFG_TEST_DB", "postgres://x")
			t.Setenv("CFG_TEST_VALUE", v)
			for _, yaml := range []string{"addr: ${CFG_TEST_VALUE}\nworkers: 2\n", "addr: \"${CFG_TEST_VALUE}\"\nworkers: 2\n"} {
				var got sample
				if err := Decode([]byte(yaml), &got); err != nil {
					t.Fatalf("%q: %v", yaml, err)
				}
				if got.Addr != v || got.Workers != 2 || got.DB.URL != "" {
					t.Fatalf("%q: structure changed: %+v", yaml, got)
				}
			}
		})
	}
}

type typed struct {
	Port    int           `yaml:"port"`
	On      bool          `yaml:"on"`
	Name    string        `yaml:"name"`
	Wait    time.Duration `yaml:"wait"`
	Origins []string      `yaml:"origins"`
	Keep    []string      `yaml:"keep"`
}

func TestExpandTypesAndLists(t *testing.T) {
	t.Setenv("CFG_TEST_PORT", "8080")
	t.Setenv("CFG_TEST_ON", "true")
	t.Setenv("CFG_TEST_LIST", "https://a.example, https://b.example:8443,,")
	t.Setenv("CFG_TEST_EMPTY", "")
	yaml := "port: ${CFG_TEST_PORT}\non: ${CFG_TEST_ON}\nname: \"${CFG_TEST_PORT}\"\nwait: ${CFG_TEST_UNSET:-3s}\n" +
		"origins: [\"${CFG_TEST_LIST}\", \"${CFG_TEST_EMPTY}\"]\nkeep:\n  - x${CFG_TEST_EMPTY}\n  - ${CFG_TEST_UNSET:-c, d}\n"
	var got typed
	if err := Decode([]byte(yaml), &got); err != nil {
		t.Fatal(err)
	}
	want := typed{Port: 8080, On: true, Name: "8080", Wait: 3 * time.Second,
		Origins: []string{"https://a.example", "https://b.example:8443"}, Keep: []string{"x", "c", "d"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	var empty typed
	if err := Decode([]byte("origins: [\"${CFG_TEST_EMPTY}\"]\n"), &empty); err != nil || len(empty.Origins) != 0 {
		t.Fatalf("empty list: %q %v", empty.Origins, err)
	}
}

func TestExpandNamesEveryMissingVariable(t *testing.T) {
	var got sample
	err := Decode([]byte("addr: ${CFG_TEST_MISSING_A}\ndb:\n  url: ${CFG_TEST_MISSING_B}\n"), &got)
	if err == nil || !strings.Contains(err.Error(), "CFG_TEST_MISSING_A, CFG_TEST_MISSING_B") {
		t.Fatalf("err = %v", err)
	}
}

type renamed struct {
	sample `yaml:",inline"`
}

func (renamed) Renamed() map[string]string {
	return map[string]string{"http.listen": "addr", "$CFG_TEST_OLD_ADDR": "$CFG_TEST_ADDR"}
}

func TestRenamed(t *testing.T) {
	var r renamed
	err := Decode([]byte("workers: 1\nhttp:\n  listen: x\n"), &r)
	if err == nil || !strings.Contains(err.Error(), "line 3: key http.listen is now addr") {
		t.Fatalf("old key: %v", err)
	}
	t.Setenv("CFG_TEST_OLD_ADDR", "x")
	err = Decode(nil, &r)
	if err == nil || !strings.Contains(err.Error(), "environment variable CFG_TEST_OLD_ADDR is now CFG_TEST_ADDR") {
		t.Fatalf("old variable: %v", err)
	}
}

// FuzzExpandKeepsStructure: whatever a variable holds, it becomes exactly
// the value it is referenced in (quoted) and no other key changes.
func FuzzExpandKeepsStructure(f *testing.F) {
	for _, s := range []string{"", "a: b", "x\nworkers: 9", "[1]", "${X}", "$$", "#", "\"", "null"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if strings.ContainsRune(v, 0) {
			return // not representable in the environment
		}
		t.Setenv("CFG_FUZZ_VALUE", v)
		var got sample
		if err := Decode([]byte("addr: \"${CFG_FUZZ_VALUE}\" # ${CFG_FUZZ_UNSET}\nworkers: ${CFG_FUZZ_UNSET:-3}\n"), &got); err != nil {
			t.Fatal(err)
		}
		if got.Addr != v || got.Workers != 3 || got.Timeout != 0 || got.DB.URL != "" {
			t.Fatalf("%q: %+v", v, got)
		}
		var plain sample
		if err := Decode([]byte("addr: ${CFG_FUZZ_VALUE}\nworkers: 5\n"), &plain); err == nil && (plain.Workers != 5 || plain.DB.URL != "") {
			t.Fatalf("plain %q changed the structure: %+v", v, plain)
		}
	})
}
