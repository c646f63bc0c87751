package deploy

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const dockerfilePath = "deploy/docker/Dockerfile"

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Line int
	Cmd  string // upper case: FROM, RUN, COPY, ...
	Args string
}

// stage is one FROM section.
type stage struct {
	Name  string
	Base  string
	Instr []instruction
}

// dockerfile is a parsed Dockerfile: global ARGs (before the first FROM)
// and stages.
type dockerfile struct {
	GlobalArgs map[string]string
	Stages     []stage
}

// parseDockerfile is a small parser for the Dockerfile syntax the project
// uses: comments, parser directives, backslash continuations, instructions.
func parseDockerfile(text string) (dockerfile, error) {
	df := dockerfile{GlobalArgs: map[string]string{}}
	var ins []instruction
	var cur strings.Builder
	start := 0
	for i, raw := range strings.Split(text, "\n") {
		line := strings.TrimSpace(raw)
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(line, "#") {
			continue // comment inside a continued instruction
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\"))
			cur.WriteString(" ")
			continue
		}
		cur.WriteString(line)
		full := cur.String()
		cur.Reset()
		cmd, args, _ := strings.Cut(full, " ")
		ins = append(ins, instruction{Line: start, Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)})
	}
	if cur.Len() > 0 {
		return df, fmt.Errorf("line %d: continuation at end of file", start)
	}
	for _, in := range ins {
		switch {
		case in.Cmd == "FROM":
			fields := strings.Fields(in.Args)
			var base, name string
			for j := 0; j < len(fields); j++ {
				switch {
				case strings.HasPrefix(fields[j], "--"):
				case strings.EqualFold(fields[j], "AS") && j+1 < len(fields):
					name = fields[j+1]
					j++
				default:
					base = fields[j]
				}
			}
			if base == "" {
				return df, fmt.Errorf("line %d: FROM without image", in.Line)
			}
			df.Stages = append(df.Stages, stage{Name: name, Base: base})
		case len(df.Stages) == 0:
			if in.Cmd != "ARG" {
				return df, fmt.Errorf("line %d: %s before the first FROM", in.Line, in.Cmd)
			}
			k, v, _ := strings.Cut(in.Args, "=")
			df.GlobalArgs[k] = v
		default:
			s := &df.Stages[len(df.Stages)-1]
			s.Instr = append(s.Instr, in)
		}
	}
	if len(df.Stages) == 0 {
		return df, fmt.Errorf("no FROM")
	}
	return df, nil
}

func (df dockerfile) stage(name string) (stage, bool) {
	if name == "" {
		return df.Stages[len(df.Stages)-1], true
	}
	for _, s := range df.Stages {
		if s.Name == name {
			return s, true
		}
	}
	return stage{}, false
}

// chain returns a stage and the stages it is built FROM, target first.
func (df dockerfile) chain(target string) []stage {
	var out []stage
	s, ok := df.stage(target)
	for ok && len(out) < len(df.Stages) {
		out = append(out, s)
		s, ok = df.stage(s.Base)
		if s.Name == "" {
			ok = false
		}
	}
	return out
}

var argRefRE = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)

// expand substitutes build arguments the way BuildKit does for the simple
// ${NAME} / $NAME forms used here.
func expand(s string, args map[string]string) string {
	return argRefRE.ReplaceAllStringFunc(s, func(m string) string {
		name := argRefRE.FindStringSubmatch(m)[1]
		if v, ok := args[name]; ok {
			return v
		}
		return m
	})
}

// stageArgs resolves the ARGs a stage declares from the given build
// arguments and the declared defaults.
func stageArgs(st stage, global, buildArgs map[string]string) map[string]string {
	out := map[string]string{}
	for _, in := range st.Instr {
		if in.Cmd != "ARG" {
			continue
		}
		k, def, hasDef := strings.Cut(in.Args, "=")
		switch v, ok := buildArgs[k]; {
		case ok:
			out[k] = v
		case hasDef:
			out[k] = expand(def, out)
		default:
			out[k] = global[k]
		}
	}
	return out
}

func loadDockerfile(t testing.TB) dockerfile {
	t.Helper()
	df, err := parseDockerfile(string(readFile(t, dockerfilePath)))
	if err != nil {
		t.Fatalf("%s: %v", dockerfilePath, err)
	}
	return df
}

func TestParseDockerfile(t *testing.T) {
	df, err := parseDockerfile("# c\nARG A=1\nFROM x:${A} AS one\nRUN a \\\n  # inside\n  b\nFROM one\nUSER 1\n")
	if err != nil {
		t.Fatal(err)
	}
	if df.GlobalArgs["A"] != "1" || len(df.Stages) != 2 || df.Stages[0].Name != "one" || df.Stages[1].Base != "one" {
		t.Fatalf("parsed %+v", df)
	}
	if got := df.Stages[0].Instr[0].Args; got != "a  b" {
		t.Errorf("continuation joined to %q", got)
	}
	if c := df.chain(""); len(c) != 2 || c[1].Name != "one" {
		t.Errorf("chain = %+v", c)
	}
	for _, bad := range []string{"RUN x\n", "FROM a\nRUN b \\", ""} {
		if _, err := parseDockerfile(bad); err == nil {
			t.Errorf("parseDockerfile(%q) accepted", bad)
		}
	}
}

// TestDockerfileBuildsEveryBinary walks the Dockerfile once per binary with
// the build arguments Compose passes, and checks what BuildKit would do:
// the builder image, the go build command and its package path, the config
// copied into the image, the port and the user.
func TestDockerfileBuildsEveryBinary(t *testing.T) {
	df := loadDockerfile(t)
	c := loadCompose(t)
	build, ok := df.stage("build")
	if !ok {
		t.Fatal("no build stage")
	}
	if base := expand(build.Base, df.GlobalArgs); !regexp.MustCompile(`^golang:1\.26[.0-9]*-bookworm$`).MatchString(base) {
		t.Errorf("builder image %q, want golang:1.26-bookworm", base)
	}
	for _, b := range binaries {
		t.Run(b.Name, func(t *testing.T) {
			cb := c.Services[b.Name].Build
			if cb == nil {
				t.Fatal("no Compose build section")
			}
			args := stageArgs(build, df.GlobalArgs, cb.Args)
			var goBuild string
			for _, in := range build.Instr {
				if in.Cmd == "RUN" && strings.Contains(in.Args, "go build") {
					goBuild = expand(in.Args, args)
				}
			}
			for _, want := range []string{"--mount=type=cache,target=/go/pkg/mod", "--mount=type=cache,target=/root/.cache/go-build", "CGO_ENABLED=0", "-trimpath", `-ldflags="-s -w"`} {
				if !strings.Contains(goBuild, want) {
					t.Errorf("go build step lacks %s: %s", want, goBuild)
				}
			}
			m := regexp.MustCompile(`go build -C (\S+) .* (\./cmd/\S+)$`).FindStringSubmatch(goBuild)
			if m == nil {
				t.Fatalf("cannot read the package from %q", goBuild)
			}
			pkg := filepath.Join(m[1], m[2])
			if want := filepath.Join(b.Module, "cmd", b.Name); pkg != want {
				t.Errorf("builds %s, want %s", pkg, want)
			}
			if !exists(t, filepath.Join(pkg, "main.go")) {
				t.Errorf("%s/main.go does not exist", pkg)
			}

			chain := df.chain(cb.Target)
			if len(chain) == 0 {
				t.Fatalf("no stage %q", cb.Target)
			}
			var user, expose string
			var configs []string
			for i := len(chain) - 1; i >= 0; i-- {
				st := chain[i]
				a := stageArgs(st, df.GlobalArgs, cb.Args)
				for _, in := range st.Instr {
					switch in.Cmd {
					case "USER":
						user = expand(in.Args, a)
					case "EXPOSE":
						expose = expand(in.Args, a)
					case "COPY":
						if strings.Contains(in.Args, "--from=") {
							continue
						}
						f := strings.Fields(expand(in.Args, a))
						configs = append(configs, f[:len(f)-1]...)
					}
				}
			}
			if base := expand(chain[len(chain)-1].Base, df.GlobalArgs); !strings.HasPrefix(base, "gcr.io/distroless/") && !strings.HasPrefix(base, "debian:") {
				t.Errorf("runtime image %q, want distroless or debian-slim", base)
			}
			if user == "" || user == "root" || strings.HasPrefix(user, "0") {
				t.Errorf("runs as %q, want a non-root USER", user)
			}
			if expose != strconv.Itoa(b.Port) {
				t.Errorf("EXPOSE %q, want %d", expose, b.Port)
			}
			wantConfigs := []string{}
			if b.Config {
				wantConfigs = []string{b.Module + "/configs/"}
			}
			if !slices.Equal(configs, wantConfigs) {
				t.Errorf("copies %v from the context, want %v", configs, wantConfigs)
			}
			for _, src := range configs {
				if !exists(t, filepath.Join(src, "config.yaml")) {
					t.Errorf("%sconfig.yaml does not exist", src)
				}
			}
		})
	}
}

func TestDockerignoreKeepsWorkspace(t *testing.T) {
	ignore := string(readFile(t, ".dockerignore"))
	lines := strings.Split(ignore, "\n")
	for _, mod := range workspaceModules(t) {
		// A module directory excluded without a re-include of its go.mod
		// breaks `go build` in workspace mode inside the image.
		if slices.Contains(lines, mod) && !slices.Contains(lines, "!"+mod+"/go.mod") {
			t.Errorf(".dockerignore drops workspace module %s", mod)
		}
	}
	for _, want := range []string{".git", ".data"} {
		if !slices.Contains(lines, want) {
			t.Errorf(".dockerignore should exclude %s", want)
		}
	}
}

// workspaceModules lists the directories go.work uses.
func workspaceModules(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(string(readFile(t, "go.work")), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "./") {
			out = append(out, strings.TrimPrefix(line, "./"))
		}
	}
	if len(out) == 0 {
		t.Fatal("go.work uses no module")
	}
	return out
}
