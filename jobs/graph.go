package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/ostask/ostask/flow"
	"github.com/ostask/ostask/store"
	"github.com/ostask/ostask/tasks"
)

// Graph returns a task's flow as drawn: its atoms with their recorded
// states (PENDING before a worker started it) and the compiled flow's
// edges, structural joins removed.
func (q *Queue) Graph(ctx context.Context, id string) (Graph, error) {
	tr, err := q.get(ctx, id)
	if err != nil {
		return Graph{}, err
	}
	k, ok := lookupKind(tr.Kind)
	if !ok {
		return Graph{}, fmt.Errorf("%w: %q", ErrUnknownKind, tr.Kind)
	}
	values, err := k.values(tr.Params)
	if err != nil {
		return Graph{}, fmt.Errorf("jobs: task %s: %w", id, err)
	}
	values[tasks.RunID] = id
	// Built without a cloud: only compiled, never run.
	f, err := k.build(nil, values, nil)
	if err != nil {
		return Graph{}, fmt.Errorf("jobs: task %s: %w", id, err)
	}
	c, err := flow.Compile(f, flow.WithInputs(mapKeys(values)...))
	if err != nil {
		return Graph{}, fmt.Errorf("jobs: task %s: %w", id, err)
	}
	atoms := map[string]store.AtomInfo{}
	if _, as, err := q.runs.Show(ctx, id); err == nil {
		for _, a := range as {
			atoms[a.Name] = a
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return Graph{}, err
	}
	nodes := c.Nodes()
	g := Graph{Nodes: []Node{}, Edges: []Edge{}}
	for _, n := range nodes {
		if n.Kind == flow.NodeJoin {
			continue
		}
		nd := Node{Name: n.Name, Kind: "task", State: flow.StatePending.String()}
		if n.Kind == flow.NodeRetry {
			nd.Kind = "retry"
		}
		if a, ok := atoms[n.Name]; ok {
			nd.State = a.State.String()
			nd.Attempts = a.Attempts
			if !a.Started.IsZero() {
				t := a.Started
				nd.StartedAt = &t
			}
			if !a.Finished.IsZero() {
				t := a.Finished
				nd.FinishedAt = &t
			}
		}
		g.Nodes = append(g.Nodes, nd)
	}
	// Follow edges through joins to the next real atoms.
	seen := map[[2]int32]bool{}
	var reach func(from, at int32, visited map[int32]bool)
	reach = func(from, at int32, visited map[int32]bool) {
		for _, s := range c.Succ(at) {
			if visited[s] {
				continue
			}
			visited[s] = true
			if nodes[s].Kind == flow.NodeJoin {
				reach(from, s, visited)
				continue
			}
			if !seen[[2]int32{from, s}] {
				seen[[2]int32{from, s}] = true
				g.Edges = append(g.Edges, Edge{From: nodes[from].Name, To: nodes[s].Name})
			}
		}
	}
	for i, n := range nodes {
		if n.Kind != flow.NodeJoin {
			reach(int32(i), int32(i), map[int32]bool{})
		}
	}
	return g, nil
}

func mapKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
