package deploy

import (
	"context"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
)

// TestComposeSpecLoads loads docker-compose.dev.yaml with compose-go, the
// loader of `docker compose` itself: schema validation, interpolation,
// YAML merge keys, env_file and build context resolution, with every
// profile enabled. The build targets it resolves (after the x-build merge)
// are the ones the Dockerfile test checks.
func TestComposeSpecLoads(t *testing.T) {
	opts, err := cli.NewProjectOptions([]string{root(t) + "/" + composeFile},
		cli.WithWorkingDirectory(root(t)), cli.WithProfiles([]string{"*"}), cli.WithName("lurus-switch"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	mine := loadCompose(t)
	if len(p.Services) != len(mine.Services) {
		t.Errorf("compose-go sees %d services, the test model %d", len(p.Services), len(mine.Services))
	}
	for _, b := range binaries {
		s, ok := p.Services[b.Name]
		if !ok || s.Build == nil {
			t.Errorf("compose-go: %s has no build", b.Name)
			continue
		}
		if want := mine.Services[b.Name].Build.Target; s.Build.Target != want {
			t.Errorf("%s: compose-go resolves target %q, the test model %q", b.Name, s.Build.Target, want)
		}
		if s.Build.Args["SERVICE"] == nil || *s.Build.Args["SERVICE"] != b.Name {
			t.Errorf("%s: build arg SERVICE %v", b.Name, s.Build.Args["SERVICE"])
		}
	}
}
