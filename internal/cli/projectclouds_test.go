package cli

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/jobs"
)

// The clouds of serve and worker: each project's credentials log in at
// once (so that a wrong one stops the process at start), the cloud is
// dialled on first use and kept, by the project's id or name; another
// project has no credentials; every credential is there to be scrubbed.
func TestProjectClouds(t *testing.T) {
	ctx := context.Background()
	sim, err := cloudsim.Start(ctx, cloudsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	demo, alt := sim.DemoCredentials(), sim.AltCredentials()
	pc, err := newProjectClouds(ctx, []projectAuth{{cloud: "sim demo", auth: credAuth(demo)},
		{want: alt.ProjectName, cloud: "sim alt", auth: credAuth(alt)}}, simConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, p := range pc.byID {
		if p.c != nil {
			t.Fatalf("project %s dialled before its first use", p.name)
		}
	}
	c1, err := pc.Resolve(ctx, cloudsim.DemoProjectID)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := pc.Resolve(ctx, demo.ProjectName)
	if err != nil || c2 != c1 {
		t.Fatalf("by name: %p %v, want the cloud dialled by id (%p)", c2, err, c1)
	}
	if c3, err := pc.Resolve(ctx, alt.ProjectName); err != nil || c3 == c1 {
		t.Fatalf("alt: %p %v: want its own cloud", c3, err)
	}
	if _, err := pc.Resolve(ctx, "admin"); !errors.Is(err, jobs.ErrNoCredentials) {
		t.Fatalf("a project without credentials: %v", err)
	}
	if s := pc.Secrets(); !slices.Contains(s, demo.Password) {
		t.Fatalf("secrets %q lack a password", s)
	}
	if got := pc.Projects(); !slices.Equal(got, []string{"alt (sim alt)", "demo (sim demo)"}) {
		t.Fatalf("projects %q", got)
	}

	// Credentials of another project than asked for stop the process.
	_, err = newProjectClouds(ctx, []projectAuth{{want: "alt", cloud: "sim demo", auth: credAuth(demo)}}, simConfig)
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 2 {
		t.Fatalf("demo's credentials for alt: %v, want a usage error", err)
	}
	// So do wrong credentials.
	bad := demo
	bad.Password = "wrong"
	if _, err := newProjectClouds(ctx, []projectAuth{{cloud: "sim demo", auth: credAuth(bad)}}, simConfig); err == nil {
		t.Fatal("a wrong password was taken")
	}
}
