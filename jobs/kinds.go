package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	schemakind "github.com/santhosh-tekuri/jsonschema/v6/kind"

	"github.com/ostask/ostask/flow"
	"github.com/ostask/ostask/ops"
	"github.com/ostask/ostask/tasks"
)

// KindsVersion is the version under which the kinds' flows are recorded
// in the store; bump it when a kind's atoms change, so that a run of the
// old shape is refused on resume rather than continued by another flow.
const KindsVersion = "1"

// param is one parameter of a kind: a store value of its flow.
type param struct {
	name     string
	typ      string // "string" or "integer"
	help     string
	def      any // nil: required
	min, max int // integers: bounds (max 0: none)
	// resource is the type of the resource the parameter names, when the
	// task acts on it ("server", "volume").
	resource string
}

// kind is a kind of task: its parameters and how to build its flow.
type kind struct {
	name     string
	help     string
	params   []param
	provides []string
	// build makes the flow on c; values hold the parameters (ints as int)
	// and flow_run_id.
	build  func(c *ops.Cloud, values map[string]any, opts []tasks.Option) (*flow.Flow, error)
	schema *jsonschema.Schema
	doc    json.RawMessage
}

var (
	pName     = param{name: tasks.Name, typ: "string", help: "name of the new resource"}
	pFlavor   = param{name: tasks.Flavor, typ: "string", help: "flavor id"}
	pImage    = param{name: tasks.Image, typ: "string", help: "image id"}
	pNetwork  = param{name: tasks.Network, typ: "string", help: "networks: auto, none, or network UUIDs separated by commas", def: "auto"}
	pServer   = param{name: tasks.Server, typ: "string", help: "server id", resource: "server"}
	pVolume   = param{name: tasks.Volume, typ: "string", help: "volume id", resource: "volume"}
	pSize     = param{name: tasks.Size, typ: "integer", help: "size (GiB)", min: 1, max: 16384}
	noopParam = param{name: "note", typ: "string", help: "free text, kept with the task", def: ""}
)

func single(name string, t func(c *ops.Cloud, name string, opts ...tasks.Option) flow.Task) func(*ops.Cloud, map[string]any, []tasks.Option) (*flow.Flow, error) {
	return func(c *ops.Cloud, _ map[string]any, opts []tasks.Option) (*flow.Flow, error) {
		return flow.Linear(name, t(c, name, opts...)), nil
	}
}

func readyMade(name string) func(*ops.Cloud, map[string]any, []tasks.Option) (*flow.Flow, error) {
	return func(c *ops.Cloud, values map[string]any, opts []tasks.Option) (*flow.Flow, error) {
		d, ok := tasks.Lookup(name)
		if !ok {
			return nil, fmt.Errorf("jobs: no ready-made flow %q", name)
		}
		f, _, err := d.Prepare(c, values, opts...)
		return f, err
	}
}

func noopFlow(*ops.Cloud, map[string]any, []tasks.Option) (*flow.Flow, error) {
	return flow.Linear("noop", flow.TaskFunc("noop", func(context.Context, flow.Inputs) (struct{}, error) {
		return struct{}{}, nil
	})), nil
}

// allKinds is every kind, sorted by name, schemas compiled.
var allKinds = func() []*kind {
	ks := []*kind{
		{name: "server.create", help: "boot a server and wait until it is ACTIVE", params: []param{pName, pFlavor, pImage, pNetwork}, provides: []string{tasks.Server},
			build: single("create-server", tasks.CreateServer)},
		{name: "server.delete", help: "delete a server and wait until it is gone", params: []param{pServer},
			build: single("delete-server", tasks.DeleteServer)},
		{name: "server.resize", help: "resize a server and confirm the resize (reverted if the confirm fails)", params: []param{pServer, {name: tasks.Flavor, typ: "string", help: "new flavor id"}},
			build: func(c *ops.Cloud, _ map[string]any, opts []tasks.Option) (*flow.Flow, error) {
				return tasks.ResizeAndConfirm(c, opts...), nil
			}},
		{name: "server.migrate", help: "cold-migrate a server and confirm (admin only)", params: []param{pServer},
			build: func(c *ops.Cloud, _ map[string]any, opts []tasks.Option) (*flow.Flow, error) {
				return flow.Linear("migrate", tasks.MigrateServer(c, "migrate-server", opts...), tasks.ConfirmResize(c, "confirm-migration", opts...)), nil
			}},
		{name: "server.snapshot", help: "snapshot a server into an image and wait until it is active", params: []param{pServer, {name: tasks.Name, typ: "string", help: "name of the image"}}, provides: []string{tasks.Image},
			build: single("snapshot-server", tasks.CreateServerImage)},
		{name: "volume.create", help: "create an empty volume and wait until it is available", params: []param{pName, pSize}, provides: []string{tasks.Volume},
			build: single("create-volume", tasks.CreateVolume)},
		{name: "volume.delete", help: "delete a volume and wait until it is gone", params: []param{pVolume},
			build: single("delete-volume", tasks.DeleteVolume)},
		{name: "volume.attach", help: "attach a volume to a server and wait until both show it", params: []param{pServer, pVolume},
			build: single("attach-volume", tasks.AttachVolume)},
		{name: "volume.detach", help: "detach a volume from a server and wait until it is available", params: []param{pServer, pVolume},
			build: single("detach-volume", tasks.DetachVolume)},
		{name: "noop", help: "do nothing (for checking and measuring the service)", params: []param{noopParam}, build: noopFlow},
	}
	for _, d := range tasks.Flows() {
		if d.Name == "resize" { // server.resize
			continue
		}
		k := &kind{name: d.Name, help: d.Help, provides: d.Provides, build: readyMade(d.Name)}
		for _, p := range d.Params {
			q := param{name: p.Name, typ: "string", help: p.Help, def: p.Default}
			switch p.Kind {
			case tasks.ParamInt:
				q.typ, q.min = "integer", 1
				if p.Name == tasks.Volumes {
					q.max = tasks.MaxVolumes
				} else {
					q.max = 16384
				}
			case tasks.ParamServer:
				q.resource = "server"
			}
			k.params = append(k.params, q)
		}
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b *kind) int { return strings.Compare(a.name, b.name) })
	for _, k := range ks {
		k.doc = k.schemaDoc()
		c := jsonschema.NewCompiler()
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(k.doc))
		if err != nil {
			panic(err)
		}
		url := "urn:ostask:kind:" + k.name
		if err := c.AddResource(url, doc); err != nil {
			panic(err)
		}
		if k.schema, err = c.Compile(url); err != nil {
			panic(fmt.Sprintf("jobs: schema of %s: %v", k.name, err))
		}
	}
	return ks
}()

func lookupKind(name string) (*kind, bool) {
	for _, k := range allKinds {
		if k.name == name {
			return k, true
		}
	}
	return nil, false
}

// schemaDoc is the kind's JSON Schema (draft 2020-12).
func (k *kind) schemaDoc() json.RawMessage {
	props := map[string]any{}
	required := []string{}
	for _, p := range k.params {
		s := map[string]any{"type": p.typ, "description": p.help}
		if p.typ == "string" && p.def == nil {
			s["minLength"] = 1
		}
		if p.typ == "string" {
			s["maxLength"] = 255
		}
		if p.typ == "integer" {
			s["minimum"] = p.min
			if p.max > 0 {
				s["maximum"] = p.max
			}
		}
		if p.def != nil {
			s["default"] = p.def
		} else {
			required = append(required, p.name)
		}
		props[p.name] = s
	}
	b, err := json.Marshal(map[string]any{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"title":                k.name,
		"description":          k.help,
		"type":                 "object",
		"properties":           props,
		"required":             required,
		"additionalProperties": false,
	})
	if err != nil {
		panic(err)
	}
	return b
}

func (k *kind) public() Kind {
	return Kind{Name: k.name, Help: k.help, Schema: k.doc, Provides: slices.Clone(k.provides)}
}

// validate checks raw params against the schema and returns them in
// canonical form (defaults filled in, keys sorted) with the store values.
func (k *kind) validate(raw json.RawMessage) (json.RawMessage, map[string]any, []FieldError) {
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = json.RawMessage("{}")
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, nil, []FieldError{{Field: "params", Message: "not valid JSON: " + err.Error()}}
	}
	if err := k.schema.Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) {
			return nil, nil, []FieldError{{Field: "params", Message: err.Error()}}
		}
		return nil, nil, fieldErrors(ve)
	}
	values, err := k.values(raw)
	if err != nil {
		return nil, nil, []FieldError{{Field: "params", Message: err.Error()}}
	}
	canon, err := json.Marshal(values)
	if err != nil {
		return nil, nil, []FieldError{{Field: "params", Message: err.Error()}}
	}
	return canon, values, nil
}

// values decodes validated (or stored) params into store values, with
// defaults; integers as int.
func (k *kind) values(raw json.RawMessage) (map[string]any, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	values := map[string]any{}
	for _, p := range k.params {
		v, ok := m[p.name]
		if !ok {
			if p.def == nil {
				return nil, fmt.Errorf("%s is required", p.name)
			}
			values[p.name] = p.def
			continue
		}
		if p.typ == "integer" {
			var n int
			if err := json.Unmarshal(v, &n); err != nil {
				return nil, fmt.Errorf("%s: %w", p.name, err)
			}
			values[p.name] = n
		} else {
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, fmt.Errorf("%s: %w", p.name, err)
			}
			values[p.name] = s
		}
	}
	return values, nil
}

// acted lists the resources the parameters name.
func (k *kind) acted(values map[string]any) []Resource {
	var rs []Resource
	for _, p := range k.params {
		if s, ok := values[p.name].(string); ok && p.resource != "" && s != "" {
			rs = append(rs, Resource{Type: p.resource, ID: s})
		}
	}
	return rs
}

// fieldErrors flattens the leaves of a schema validation error.
func fieldErrors(ve *jsonschema.ValidationError) []FieldError {
	var out []FieldError
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			field := "params"
			if len(e.InstanceLocation) > 0 {
				field += "." + strings.Join(e.InstanceLocation, ".")
			}
			// A missing or unknown property is the property's own error, so
			// that a form shows it beside its field.
			switch k := e.ErrorKind.(type) {
			case *schemakind.Required:
				for _, name := range k.Missing {
					out = append(out, FieldError{Field: field + "." + name, Message: "required"})
				}
				return
			case *schemakind.AdditionalProperties:
				for _, name := range k.Properties {
					out = append(out, FieldError{Field: field + "." + name, Message: "unknown parameter"})
				}
				return
			}
			msg := e.Error()
			// The library's message starts with the location; keep the reason.
			if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg, "at '") {
				msg = msg[i+2:]
			}
			out = append(out, FieldError{Field: field, Message: msg})
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	if len(out) == 0 {
		out = append(out, FieldError{Field: "params", Message: ve.Error()})
	}
	return out
}

// resourceOf maps the name of a value an atom provides to the type of
// resource it made.
func resourceOf(name string) string {
	switch {
	case name == tasks.Server || name == tasks.NewServer:
		return "server"
	case name == tasks.Volume || name == tasks.BootVolume || name == tasks.DataVolume || strings.HasPrefix(name, tasks.Volume+"_"):
		return "volume"
	case name == tasks.Snapshot || name == tasks.Image: // as an atom's output: a snapshot made
		return "image"
	}
	return ""
}
