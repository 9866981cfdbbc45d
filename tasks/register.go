package tasks

import (
	"encoding/json"
	"fmt"

	"github.com/ostask/ostask/flow"
	"github.com/ostask/ostask/ops"
	"github.com/ostask/ostask/store"
)

// FlowsVersion is the version under which Register records the ready-made
// flows. Bump it when a flow's atoms change (renamed, added, removed, or
// reading other values): a run stored by another version is then refused
// on resume rather than continued by a flow it does not match.
const FlowsVersion = "1"

// Register adds the ready-made flows to reg, built on c with opts, so that
// a durable run of one of them can be resumed (store.DB.Resume). Each
// builder reads the parameters of Definition.Params from the run's JSON
// parameters with the parameter's type and prepares the flow as Prepare
// does.
func Register(reg *store.Registry, c *ops.Cloud, opts ...Option) error {
	for _, d := range Flows() {
		if err := reg.Register(d.Name, FlowsVersion, d.builder(c, opts)); err != nil {
			return err
		}
	}
	return nil
}

func (d Definition) builder(c *ops.Cloud, opts []Option) store.Builder {
	return func(params map[string]json.RawMessage) (*flow.Flow, map[string]any, error) {
		values := make(map[string]any, len(params))
		kinds := map[string]ParamKind{RunID: ParamString}
		for _, p := range d.Params {
			kinds[p.Name] = p.Kind
		}
		for name, raw := range params {
			var v any
			var err error
			if kinds[name] == ParamInt {
				v, err = flow.As[int](raw)
			} else {
				v, err = flow.As[string](raw) // an unknown name is Prepare's to refuse
			}
			if err != nil {
				return nil, nil, fmt.Errorf("%w: %s: %s: %w", ErrBadParams, d.Name, name, err)
			}
			values[name] = v
		}
		return d.Prepare(c, values, opts...)
	}
}
