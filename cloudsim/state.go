package cloudsim

import (
	"slices"
	"sort"
	"time"

	"github.com/google/uuid"
)

// resBase is embedded by every simulated resource. gen is bumped when a new
// operation supersedes the one in flight (a delete during a build, say):
// steps scheduled by the older operation then find a different gen and
// do nothing.
type resBase struct {
	gen uint64
	seq uint64 // creation order, for listing
}

type fault struct {
	Code    int
	Message string
	Details string
	Created time.Time
}

type instanceEvent struct {
	Event     string
	Start     time.Time
	Finish    time.Time // zero while running
	Result    string    // "", "Success", "Error"
	Traceback string
	Host      string
	Details   string
}

type instanceAction struct {
	Action    string
	RequestID string
	UserID    string
	ProjectID string
	Start     time.Time
	Updated   time.Time
	Message   string // "" = null, or "Error"
	Events    []*instanceEvent
}

// serverVolume is a volume attached to a server (Nova's BDM view).
type serverVolume struct {
	AttachmentID string // Nova BDM attachment id (also the Cinder attachment id)
	BDMUUID      string
	VolumeID     string
	Device       string
	Tag          string
	DeleteOnTerm bool
	Boot         bool // the root disk of a boot-from-volume server
}

type server struct {
	resBase
	ID, Name, Description string
	ProjectID, UserID     string
	ImageRef, FlavorID    string
	OldFlavorID           string // during resize / VERIFY_RESIZE
	KeyName               string
	AZ                    string
	Host                  string
	VMState, TaskState    string // TaskState "" means null
	PowerState            int
	Progress              int
	Created, Updated      time.Time // Updated is second-precision (Nova's DB column)
	changedAt             time.Time // exact time of the last change, for benchmarks
	LaunchedAt            time.Time
	Metadata              map[string]string
	Tags                  []string
	Networks              any // as sent ("auto", "none" or a list)
	Fault                 *fault
	Locked                bool
	Deleted               bool
	DeletedAt             time.Time
	Volumes               []*serverVolume
	Actions               []*instanceAction // oldest first
	UserData              string
	nova                  *novaServer // Nova-only details, see nova.go
	// buildReq: the server exists only as a Nova build request (see
	// nova_build_requests.go); release ends that phase (nil otherwise).
	buildReq bool
	release  func(now time.Time)
}

type volAttachment struct {
	ID         string
	ServerID   string
	Device     string
	HostName   string
	AttachedAt time.Time
	Status     string // reserved attaching attached detaching
}

type volume struct {
	resBase
	ID, Name, Description string
	ProjectID, UserID     string
	Size                  int
	Status                string
	VolumeType            string
	AZ                    string
	Bootable              bool
	ImageID               string            // source image, if any
	ImageMeta             map[string]string // volume_image_metadata, captured from Glance when the copy finishes
	SnapshotID, SourceVol string
	Multiattach           bool
	Metadata              map[string]string
	Attachments           []*volAttachment
	Created, Updated      time.Time // microsecond precision, rendered without Z
	PrevStatus            string    // status to return to after extending
	Deleted               bool
}

type image struct {
	resBase
	ID, Name                    string
	Status                      string
	Visibility                  string
	Owner                       string
	ContainerFormat, DiskFormat string
	Size                        int64
	MinDisk, MinRAM             int
	Protected                   bool
	Tags                        []string
	Properties                  map[string]string
	Created, Updated            time.Time
	Deleted                     bool
}

type flavor struct {
	ID, Name        string
	RAM, VCPUs      int
	Disk, Ephemeral int
	Swap            int
	RxTxFactor      float64
	Public          bool
	ExtraSpecs      map[string]string
}

// change is one entry in the servers' change log: server id was updated
// at `at`. The log is sorted by at because the clock never goes back.
type change struct {
	at time.Time
	id string
}

// touchServer stamps sv as changed now. Nova's updated_at is a DATETIME
// without fractions, so it is truncated to the second, which is why a
// changes-since poller must overlap its window by a second.
// Callers hold s.mu.
func (s *Sim) touchServer(sv *server, now time.Time) {
	sv.Updated = now.UTC().Truncate(time.Second)
	sv.changedAt = now
	s.changeLog = append(s.changeLog, change{at: sv.Updated, id: sv.ID})
	if len(s.changeLog) > 4*len(s.servers)+1024 {
		s.compactChangeLog()
	}
	s.notifyServer(sv, now)
}

func (s *Sim) compactChangeLog() {
	log := make([]change, 0, len(s.servers))
	for _, sv := range s.servers {
		log = append(log, change{at: sv.Updated, id: sv.ID})
	}
	sort.Slice(log, func(i, j int) bool { return log[i].at.Before(log[j].at) })
	s.changeLog = log
}

// changedServers returns the servers (deleted ones included) whose
// updated time is >= since, in time proportional to the number of changes
// since then, not to the number of servers. Callers hold s.mu.
func (s *Sim) changedServers(since time.Time) []*server {
	i := sort.Search(len(s.changeLog), func(i int) bool { return !s.changeLog[i].at.Before(since) })
	seen := make(map[string]bool, len(s.changeLog)-i)
	var out []*server
	for _, c := range s.changeLog[i:] {
		if seen[c.id] {
			continue
		}
		seen[c.id] = true
		if sv, ok := s.servers[c.id]; ok && !sv.Updated.Before(since) {
			out = append(out, sv)
		}
	}
	return out
}

// ServerInfo is a snapshot of one simulated server, for tests and benchmarks.
type ServerInfo struct {
	ID, Name, Status, VMState, TaskState string
	FaultMessage                         string
	Metadata                             map[string]string
	Deleted                              bool
	// BuildRequest: the server is still in Nova's build-request phase.
	BuildRequest bool
	VolumeIDs    []string
	// ChangedAt is the exact time of the server's last change (its API
	// `updated` has one-second resolution); benchmarks measure how long a
	// client takes to notice a change from it.
	ChangedAt time.Time
}

// VolumeInfo is a snapshot of one simulated volume.
type VolumeInfo struct {
	ID, Name, Status string
	Size             int
	ServerIDs        []string
	Metadata         map[string]string
}

// ImageInfo is a snapshot of one simulated image.
type ImageInfo struct {
	ID, Name, Status string
	Properties       map[string]string
}

// Servers returns every server that is not deleted (deleted=true entries
// are included only when includeDeleted is set).
func (s *Sim) Servers(includeDeleted bool) []ServerInfo {
	defer s.lockNow()()
	var out []ServerInfo
	list := s.liveServers("")
	if includeDeleted {
		list = s.retainedServers("")
	}
	for _, sv := range list {
		info := ServerInfo{ID: sv.ID, Name: sv.Name, Status: serverStatus(sv.VMState, sv.TaskState),
			VMState: sv.VMState, TaskState: sv.TaskState, Metadata: cloneMap(sv.Metadata), Deleted: sv.Deleted,
			BuildRequest: sv.buildReq, ChangedAt: sv.changedAt}
		if sv.Fault != nil {
			info.FaultMessage = sv.Fault.Message
		}
		for _, v := range sv.Volumes {
			info.VolumeIDs = append(info.VolumeIDs, v.VolumeID)
		}
		out = append(out, info)
	}
	return out
}

// Volumes returns every volume that still exists.
func (s *Sim) Volumes() []VolumeInfo {
	defer s.lockNow()()
	var out []VolumeInfo
	for _, v := range s.volumeOrder {
		if v.Deleted {
			continue
		}
		info := VolumeInfo{ID: v.ID, Name: v.Name, Status: v.Status, Size: v.Size, Metadata: cloneMap(v.Metadata)}
		for _, a := range v.Attachments {
			info.ServerIDs = append(info.ServerIDs, a.ServerID)
		}
		out = append(out, info)
	}
	return out
}

// Images returns every image that still exists.
func (s *Sim) Images() []ImageInfo {
	defer s.lockNow()()
	var out []ImageInfo
	for _, im := range s.imageOrder {
		if im.Deleted {
			continue
		}
		out = append(out, ImageInfo{ID: im.ID, Name: im.Name, Status: im.Status, Properties: cloneMap(im.Properties)})
	}
	return out
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// The functions below are the seams between the services: Nova creates
// boot volumes and snapshot images, and drives volume attachments, through
// them. Callers hold s.mu.

// newVolumeLocked records a volume in status "creating" and returns it; the
// caller starts its walk (see Sim.startVolumeCreate in cinder.go).
func (s *Sim) newVolumeLocked(projectID, userID, name string, size int, imageID string, metadata map[string]string, now time.Time) *volume {
	v := &volume{
		resBase: resBase{seq: s.nextSeq()}, ID: newUUID(), Name: name, ProjectID: projectID, UserID: userID,
		Size: size, Status: "creating", VolumeType: "__DEFAULT__", AZ: "nova", ImageID: imageID,
		Bootable: imageID != "", Metadata: cloneMap(metadata), Created: now.UTC(),
	}
	if v.Metadata == nil {
		v.Metadata = map[string]string{}
	}
	s.volumes[v.ID] = v
	s.volumeOrder = append(s.volumeOrder, v)
	return v
}

// setVolumeStatus changes a volume's status and stamps updated_at.
func (s *Sim) setVolumeStatus(v *volume, status string, now time.Time) {
	v.Status = status
	v.Updated = now.UTC()
}

// removeVolumeLocked makes a volume vanish (Cinder hides deleted volumes).
func (s *Sim) removeVolumeLocked(v *volume) {
	v.Deleted = true
	v.gen++
	delete(s.volumes, v.ID)
	s.volumeOrder = slices.DeleteFunc(s.volumeOrder, func(o *volume) bool { return o == v })
}

// liveVolume returns the volume with id, or nil if there is none.
func (s *Sim) liveVolume(id string) *volume {
	v := s.volumes[id]
	if v == nil || v.Deleted {
		return nil
	}
	return v
}

// newImageLocked records an image with the given status.
func (s *Sim) newImageLocked(name, owner, status string, props map[string]string, now time.Time) *image {
	im := &image{
		resBase: resBase{seq: s.nextSeq()}, ID: newUUID(), Name: name, Status: status, Visibility: "private",
		Owner: owner, ContainerFormat: "bare", DiskFormat: "qcow2", Properties: cloneMap(props),
		Created: now.UTC(), Updated: now.UTC(),
	}
	if im.Properties == nil {
		im.Properties = map[string]string{}
	}
	s.images[im.ID] = im
	s.imageOrder = append(s.imageOrder, im)
	return im
}

// setImageStatus changes an image's status and stamps updated_at.
func (s *Sim) setImageStatus(im *image, status string, now time.Time) {
	im.Status = status
	im.Updated = now.UTC()
}

// removeImageLocked makes an image vanish (Glance answers 404 for it).
func (s *Sim) removeImageLocked(im *image) {
	im.Deleted = true
	im.gen++
	delete(s.images, im.ID)
	s.imageOrder = slices.DeleteFunc(s.imageOrder, func(o *image) bool { return o == im })
}

// liveImage returns the image with id, or nil if there is none.
func (s *Sim) liveImage(id string) *image {
	im := s.images[id]
	if im == nil || im.Deleted {
		return nil
	}
	return im
}

func newUUID() string { return uuid.NewString() }
