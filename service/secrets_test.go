package service_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/jobs"
	"github.com/ostask/ostask/service"
	"github.com/ostask/ostask/store"
)

// syncBuffer is a log sink written by the server's goroutines and read
// by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A task parameter that holds one of the service's cloud credentials is
// refused with a field error, on the real queue: the store would record
// it as "[redacted]" and a resumed task would act with that. Neither the
// answer nor the logs quote the credential, and nothing is stored.
func TestCreateRefusesCredentialInParams(t *testing.T) {
	const password = "Proj-Passw0rd-51c2" // a project's, as serve registers it
	q, err := jobs.Open(context.Background(), jobs.Config{URL: filepath.Join(t.TempDir(), "q.db"),
		StoreOptions: []store.Option{store.WithSecrets(password)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	logs := &syncBuffer{}
	e := newEnv(t, func(c *service.Config) {
		c.Backend = q
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	for _, tc := range []struct {
		body, field string
		headers     []string
	}{
		{`{"kind":"volume.create","params":{"name":"faulty` + password + `","size":1}}`, "params.name", nil},
		{`{"kind":"noop","params":{"note":"` + password + `"}}`, "params.note", nil},
		{`{"kind":"noop"}`, "idempotency_key", []string{"Idempotency-Key", "k-" + password}},
	} {
		r := e.do("POST", "/v1/tasks", e.demo, tc.body, tc.headers...)
		if r.code != 400 {
			t.Fatalf("%s: %d %s, want 400", tc.body, r.code, r.body)
		}
		ae := r.apiErr(t)
		if ae.Code != service.CodeBadRequest || len(ae.Fields) != 1 || ae.Fields[0].Field != tc.field {
			t.Errorf("%s: %s, want one field error at %s", tc.body, r.body, tc.field)
		}
		if bytes.Contains(r.body, []byte(password)) {
			t.Errorf("the answer quotes the credential: %s", r.body)
		}
	}
	if p, err := q.List(context.Background(), jobs.Filter{}); err != nil || len(p.Tasks) != 0 {
		t.Fatalf("refused tasks were stored: %v %v", p.Tasks, err)
	}
	if strings.Contains(logs.String(), password) {
		t.Fatalf("the logs quote the credential:\n%s", logs)
	}
	// The same request without the credential is taken.
	e.create(e.demo, "volume.create", `{"name":"faulty","size":1}`)
	if task, err := q.List(context.Background(), jobs.Filter{Project: cloudsim.DemoProjectID}); err != nil || len(task.Tasks) != 1 {
		t.Fatalf("tasks %v %v, want the one accepted", task.Tasks, err)
	}
}
