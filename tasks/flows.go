package tasks

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/ostask/ostask/flow"
	"github.com/ostask/ostask/ops"
)

// Names of the values the ready-made flows read or provide besides the
// task names above.
const (
	BootVolumeSize = "boot_volume_size" // boot-from-volume: GiB of the boot volume
	DataVolumeSize = "data_volume_size" // boot-from-volume: GiB of the data volume
	DataVolume     = "data_volume"      // boot-from-volume: the data volume's id
	VolumeSize     = "volume_size"      // server-with-volumes: GiB of each volume
	Volumes        = "volumes"          // server-with-volumes: how many volumes
	Snapshot       = "snapshot"         // snapshot-and-replace: the snapshot's image id
	NewServer      = "new_server"       // snapshot-and-replace: the replacement's id
)

// MaxVolumes bounds the volumes of server-with-volumes.
const MaxVolumes = 64

// with appends extra after the caller's options, so that the flow's own
// settings (name suffixes) win.
func with(opts []Option, extra ...Option) []Option {
	return append(slices.Clip(opts), extra...)
}

// BootFromVolume returns the boot-from-volume flow: create a bootable
// volume from image, boot a server from it, and create and attach a data
// volume (made while the boot volume and server are built). Store values:
// flow_run_id, name, flavor, image, boot_volume_size, data_volume_size
// (ints, GiB), optional network. It provides boot_volume, server and
// data_volume. A failure anywhere reverts everything: the data volume is
// detached and deleted, the server deleted, the boot volume deleted.
func BootFromVolume(c *ops.Cloud, opts ...Option) *flow.Flow {
	return flow.Graph("boot-from-volume",
		flow.Bind(CreateVolumeFromImage(c, "create-boot-volume", with(opts, WithNameSuffix("-boot"))...),
			flow.Rebind(Size, BootVolumeSize), flow.Provides(BootVolume)),
		BootServerFromVolume(c, "boot-server", opts...),
		flow.Bind(CreateVolume(c, "create-data-volume", with(opts, WithNameSuffix("-data"))...),
			flow.Rebind(Size, DataVolumeSize), flow.Provides(DataVolume)),
		flow.Bind(AttachVolume(c, "attach-data-volume", opts...), flow.Rebind(Volume, DataVolume)),
	)
}

// ServerWithVolumes returns the server-with-volumes flow: boot a server
// and attach n new volumes to it, in parallel (each volume is created
// while the server builds and attached once both are ready). Store values:
// flow_run_id, name, flavor, image, volume_size (int, GiB), optional
// network. It provides server and volume_1 .. volume_n; the volumes are
// named <name>-vol-<i>.
func ServerWithVolumes(c *ops.Cloud, n int, opts ...Option) *flow.Flow {
	f := flow.Graph("server-with-volumes", CreateServer(c, "create-server", opts...))
	for i := 1; i <= n; i++ {
		v := fmt.Sprintf("%s_%d", Volume, i)
		f.Add(
			flow.Bind(CreateVolume(c, fmt.Sprintf("create-volume-%d", i), with(opts, WithNameSuffix(fmt.Sprintf("-vol-%d", i)))...),
				flow.Rebind(Size, VolumeSize), flow.Provides(v)),
			flow.Bind(AttachVolume(c, fmt.Sprintf("attach-volume-%d", i), opts...), flow.Rebind(Volume, v)),
		)
	}
	return f
}

// SnapshotAndReplace returns the snapshot-and-replace flow: snapshot the
// server, boot a replacement named name from the snapshot, then delete
// the old server. Store values: flow_run_id, server (the old one), name,
// flavor, optional network. It provides snapshot (kept after success) and
// new_server. Deleting the old server is last because it cannot be
// undone; when it fails, the replacement and the snapshot are reverted.
func SnapshotAndReplace(c *ops.Cloud, opts ...Option) *flow.Flow {
	return flow.Linear("snapshot-and-replace",
		flow.Bind(CreateServerImage(c, "snapshot-server", with(opts, WithNameSuffix("-snapshot"))...), flow.Provides(Snapshot)),
		flow.Bind(CreateServer(c, "boot-replacement", opts...), flow.Rebind(Image, Snapshot), flow.Provides(NewServer)),
		DeleteServer(c, "delete-old-server", opts...),
	)
}

// ResizeAndConfirm returns the resize flow: resize the server to flavor
// and confirm once it waits in VERIFY_RESIZE. Store values: server,
// flavor. A resize that Nova rolls back fails the flow with an
// *ops.RolledBackError; a failed confirm reverts the resize.
func ResizeAndConfirm(c *ops.Cloud, opts ...Option) *flow.Flow {
	return flow.Linear("resize", ResizeServer(c, "resize-server", opts...), ConfirmResize(c, "confirm-resize", opts...))
}

// ParamKind is the type of a flow parameter. Flavor, image and server
// parameters are ids; a command line may resolve names to them.
type ParamKind string

// Parameter kinds.
const (
	ParamString  ParamKind = "string"
	ParamInt     ParamKind = "int"
	ParamFlavor  ParamKind = "flavor"
	ParamImage   ParamKind = "image"
	ParamServer  ParamKind = "server"
	ParamNetwork ParamKind = "network"
)

// Parse converts a command-line value to the parameter's Go type (int or
// string).
func (k ParamKind) Parse(s string) (any, error) {
	if k == ParamInt {
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", s)
		}
		return n, nil
	}
	return s, nil
}

// Param is one parameter of a ready-made flow: a store value.
type Param struct {
	Name    string
	Kind    ParamKind
	Help    string
	Default any // nil: required
}

// Definition is a ready-made flow and its parameters.
type Definition struct {
	Name   string
	Help   string
	Params []Param // besides flow_run_id, which every flow requires
	// Provides names the values (resource ids) the flow produces.
	Provides []string
	build    func(c *ops.Cloud, values map[string]any, opts []Option) (*flow.Flow, error)
}

// ErrBadParams is wrapped by the errors of Definition.Prepare.
var ErrBadParams = errors.New("tasks: bad flow parameters")

// Prepare checks values against the parameters (every required one
// given, the right types, no unknown names), fills in defaults, and
// returns the flow and its store values. values must hold flow_run_id.
func (d Definition) Prepare(c *ops.Cloud, values map[string]any, opts ...Option) (*flow.Flow, map[string]any, error) {
	store := map[string]any{}
	known := map[string]bool{RunID: true}
	if id, ok := values[RunID].(string); !ok || id == "" {
		return nil, nil, fmt.Errorf("%w: %s: %s must be a non-empty string", ErrBadParams, d.Name, RunID)
	}
	store[RunID] = values[RunID]
	for _, p := range d.Params {
		known[p.Name] = true
		v, ok := values[p.Name]
		if !ok {
			if p.Default == nil {
				return nil, nil, fmt.Errorf("%w: %s: %s is required", ErrBadParams, d.Name, p.Name)
			}
			v = p.Default
		}
		switch p.Kind {
		case ParamInt:
			if _, ok := v.(int); !ok {
				return nil, nil, fmt.Errorf("%w: %s: %s must be an int, not %T", ErrBadParams, d.Name, p.Name, v)
			}
		default:
			if s, ok := v.(string); !ok || s == "" {
				return nil, nil, fmt.Errorf("%w: %s: %s must be a non-empty string", ErrBadParams, d.Name, p.Name)
			}
		}
		store[p.Name] = v
	}
	for _, k := range slices.Sorted(maps.Keys(values)) {
		if !known[k] {
			return nil, nil, fmt.Errorf("%w: %s has no parameter %q", ErrBadParams, d.Name, k)
		}
	}
	f, err := d.build(c, store, opts)
	if err != nil {
		return nil, nil, err
	}
	return f, store, nil
}

func positive(d string, values map[string]any, names ...string) error {
	for _, n := range names {
		if values[n].(int) <= 0 {
			return fmt.Errorf("%w: %s: %s must be > 0", ErrBadParams, d, n)
		}
	}
	return nil
}

var (
	pName    = Param{Name: Name, Kind: ParamString, Help: "server name"}
	pFlavor  = Param{Name: Flavor, Kind: ParamFlavor, Help: "flavor"}
	pImage   = Param{Name: Image, Kind: ParamImage, Help: "image"}
	pNetwork = Param{Name: Network, Kind: ParamNetwork, Help: "networks: auto, none, or network UUIDs separated by commas", Default: "auto"}
)

// Flows returns the ready-made flows, sorted by name.
func Flows() []Definition {
	return []Definition{
		{
			Name:     "boot-from-volume",
			Help:     "create a bootable volume from an image, boot a server from it, create and attach a data volume",
			Params:   []Param{pName, pFlavor, pImage, {Name: BootVolumeSize, Kind: ParamInt, Help: "boot volume size (GiB)", Default: 1}, {Name: DataVolumeSize, Kind: ParamInt, Help: "data volume size (GiB)", Default: 1}, pNetwork},
			Provides: []string{BootVolume, Server, DataVolume},
			build: func(c *ops.Cloud, v map[string]any, opts []Option) (*flow.Flow, error) {
				if err := positive("boot-from-volume", v, BootVolumeSize, DataVolumeSize); err != nil {
					return nil, err
				}
				return BootFromVolume(c, opts...), nil
			},
		},
		{
			Name:   "resize",
			Help:   "resize a server and confirm the resize (reverted if the confirm fails)",
			Params: []Param{{Name: Server, Kind: ParamServer, Help: "server to resize"}, {Name: Flavor, Kind: ParamFlavor, Help: "new flavor"}},
			build: func(c *ops.Cloud, v map[string]any, opts []Option) (*flow.Flow, error) {
				return ResizeAndConfirm(c, opts...), nil
			},
		},
		{
			Name:     "server-with-volumes",
			Help:     "boot a server and create and attach N volumes in parallel",
			Params:   []Param{pName, pFlavor, pImage, {Name: Volumes, Kind: ParamInt, Help: "number of volumes", Default: 2}, {Name: VolumeSize, Kind: ParamInt, Help: "size of each volume (GiB)", Default: 1}, pNetwork},
			Provides: []string{Server, Volume + "_<i>"},
			build: func(c *ops.Cloud, v map[string]any, opts []Option) (*flow.Flow, error) {
				if n := v[Volumes].(int); n < 1 || n > MaxVolumes {
					return nil, fmt.Errorf("%w: server-with-volumes: %s must be in 1..%d, not %d", ErrBadParams, Volumes, MaxVolumes, n)
				}
				if err := positive("server-with-volumes", v, VolumeSize); err != nil {
					return nil, err
				}
				return ServerWithVolumes(c, v[Volumes].(int), opts...), nil
			},
		},
		{
			Name:     "snapshot-and-replace",
			Help:     "snapshot a server, boot a replacement from the snapshot, delete the old server",
			Params:   []Param{{Name: Server, Kind: ParamServer, Help: "server to replace"}, {Name: Name, Kind: ParamString, Help: "name of the replacement"}, pFlavor, pNetwork},
			Provides: []string{Snapshot, NewServer},
			build: func(c *ops.Cloud, v map[string]any, opts []Option) (*flow.Flow, error) {
				return SnapshotAndReplace(c, opts...), nil
			},
		},
	}
}

// Lookup returns the ready-made flow named name.
func Lookup(name string) (Definition, bool) {
	for _, d := range Flows() {
		if d.Name == name {
			return d, true
		}
	}
	return Definition{}, false
}
