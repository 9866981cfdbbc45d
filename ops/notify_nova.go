package ops

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
)

// serverEvent is one of Nova's versioned instance notifications, as the
// server monitor uses it; or, with id "" and obs nil, the failure of a
// request (compute.exception).
type serverEvent struct {
	id      string // instance uuid
	project string // payload tenant_id
	reqID   string // payload request_id: the API request that caused it
	name    string // event_type, e.g. instance.create.end
	at      time.Time
	// failed: an error-phase event. Nova sends it before it sets the
	// instance to ERROR, and sends nothing when it does.
	failed bool
	obs    *observation // Resource is filled in by decided, for the event that completes
	// payload is the notification's payload: the server record an
	// operation completed by the event resolves with.
	payload *instancePayload
}

// decided returns the observation to complete an operation with: with the
// server record, built from the payload only now (most events complete
// nothing).
func (ev *serverEvent) decided() *observation {
	if ev.obs.Resource == nil {
		if ev.payload == nil || ev.payload.partial {
			ev.obs.Resource = &servers.Server{ID: ev.id, Status: ev.obs.Status, TaskState: ev.obs.TaskState}
		} else {
			ev.obs.Resource = ev.payload.server(ev.obs.Status)
		}
	}
	return ev.obs
}

// slimPayload is what an event whose whole payload does not decode is
// judged on.
type slimPayload struct {
	UUID         string                    `json:"uuid"`
	TenantID     string                    `json:"tenant_id"`
	RequestID    string                    `json:"request_id"`
	State        string                    `json:"state"`
	TaskState    string                    `json:"task_state"`
	Fault        *novaObject[payloadFault] `json:"fault"`
	BlockDevices []novaObject[struct {
		VolumeID string `json:"volume_id"`
	}] `json:"block_devices"`
}

// osloEnvelope is oslo.messaging's message format 2.0: the message itself
// is a JSON string inside the body.
type osloEnvelope struct {
	Version string `json:"oslo.version"`
	Message string `json:"oslo.message"`
}

type osloMessage struct {
	MessageID string `json:"message_id"`
	// The request context oslo.messaging sends along.
	ContextRequestID string `json:"_context_request_id"`
	ContextProjectID string `json:"_context_project_id"`
	EventType        string `json:"event_type"`
	Priority         string `json:"priority"`
	Timestamp        string `json:"timestamp"`
	Payload          struct {
		Name string         `json:"nova_object.name"`
		Data jsontext.Value `json:"nova_object.data"`
	} `json:"payload"`
}

// novaObject is a versioned object nested in a payload.
type novaObject[T any] struct {
	Data T `json:"nova_object.data"`
}

// instancePayload is the part of Nova's InstancePayload (and the action,
// create and update payloads built on it) that ostask reads.
type instancePayload struct {
	UUID         string            `json:"uuid"`
	TenantID     string            `json:"tenant_id"`
	UserID       string            `json:"user_id"`
	RequestID    string            `json:"request_id"`
	DisplayName  string            `json:"display_name"`
	Description  string            `json:"display_description"`
	HostName     string            `json:"host_name"`
	Host         string            `json:"host"`
	Node         string            `json:"node"`
	AZ           string            `json:"availability_zone"`
	ImageUUID    string            `json:"image_uuid"`
	KeyName      string            `json:"key_name"`
	CreatedAt    string            `json:"created_at"`
	LaunchedAt   string            `json:"launched_at"`
	UpdatedAt    string            `json:"updated_at"`
	TerminatedAt string            `json:"terminated_at"`
	DeletedAt    string            `json:"deleted_at"`
	State        string            `json:"state"`
	TaskState    string            `json:"task_state"`
	PowerState   string            `json:"power_state"`
	Progress     int               `json:"progress"`
	Metadata     map[string]string `json:"metadata"`
	Locked       bool              `json:"locked"`
	Flavor       *novaObject[struct {
		FlavorID    string  `json:"flavorid"`
		Name        string  `json:"name"`
		MemoryMB    int     `json:"memory_mb"`
		VCPUs       int     `json:"vcpus"`
		RootGB      int     `json:"root_gb"`
		EphemeralGB int     `json:"ephemeral_gb"`
		Swap        int     `json:"swap"`
		RxTx        float64 `json:"rxtx_factor"`
	}] `json:"flavor"`
	IPAddresses []novaObject[struct {
		Label   string `json:"label"`
		Address string `json:"address"`
		MAC     string `json:"mac"`
		Version int    `json:"version"`
	}] `json:"ip_addresses"`
	BlockDevices []novaObject[struct {
		VolumeID string `json:"volume_id"`
	}] `json:"block_devices"`
	Fault *novaObject[payloadFault] `json:"fault"`
	// partial: only the fields of slimPayload were decoded.
	partial bool
}

type payloadFault struct {
	Exception string `json:"exception"`
	Message   string `json:"exception_message"`
}

var errNotOslo = errors.New("not an oslo.messaging 2.0 envelope")

// osloInstanceMessage is an oslo.message decoded with its payload as an
// instance payload, in one pass: what the consumer does first, since
// nearly every message it reads is about an instance.
type osloInstanceMessage struct {
	ContextRequestID string `json:"_context_request_id"`
	ContextProjectID string `json:"_context_project_id"`
	EventType        string `json:"event_type"`
	Priority         string `json:"priority"`
	Timestamp        string `json:"timestamp"`
	Payload          struct {
		Data *instancePayload `json:"nova_object.data"`
	} `json:"payload"`
}

// decodeNovaEvent decodes an oslo.messaging envelope. It returns nil, nil
// for a well-formed notification that is not about an instance
// (scheduler.select_destinations, say).
func decodeNovaEvent(body []byte) (*serverEvent, error) {
	var env osloEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("decode envelope: %w", err)
	}
	if env.Message == "" {
		return nil, errNotOslo
	}
	inner := []byte(env.Message)
	var msg osloInstanceMessage
	if err := json.Unmarshal(inner, &msg); err == nil {
		return novaEvent(msg.EventType, msg.Priority, msg.Timestamp, msg.ContextRequestID, msg.ContextProjectID, msg.Payload.Data)
	}
	// A payload of another shape: decode the message first, then the
	// payload if it is an instance's.
	var gen osloMessage
	if err := json.Unmarshal(inner, &gen); err != nil {
		return nil, fmt.Errorf("decode oslo.message: %w", err)
	}
	var p *instancePayload
	if strings.HasPrefix(gen.EventType, "instance.") && len(gen.Payload.Data) > 0 {
		var slim slimPayload
		if err := json.Unmarshal(gen.Payload.Data, &slim); err != nil {
			return nil, fmt.Errorf("decode %s payload: %w", gen.EventType, err)
		}
		p = &instancePayload{}
		if json.Unmarshal(gen.Payload.Data, p) != nil {
			// A field the monitor does not judge is not as Nova sends it:
			// judge on the rest; the record is the minimal one.
			p = &instancePayload{UUID: slim.UUID, TenantID: slim.TenantID, RequestID: slim.RequestID, State: slim.State,
				TaskState: slim.TaskState, Fault: slim.Fault, BlockDevices: slim.BlockDevices, partial: true}
		}
	}
	return novaEvent(gen.EventType, gen.Priority, gen.Timestamp, gen.ContextRequestID, gen.ContextProjectID, p)
}

// novaEvent is the serverEvent of a decoded notification: p is its
// payload if it is an instance's, else nil.
func novaEvent(evType, priority, stamp, ctxReqID, ctxProject string, p *instancePayload) (*serverEvent, error) {
	if priority == "ERROR" && !strings.HasPrefix(evType, "instance.") && ctxReqID != "" {
		// compute.exception: a call failed in a way its instance's
		// notifications do not report (a failed delete turns the server
		// ERROR with no instance.* event); the payload names no server,
		// the context names the request.
		return &serverEvent{project: ctxProject, reqID: ctxReqID, name: evType, failed: true}, nil
	}
	if !strings.HasPrefix(evType, "instance.") || p == nil {
		return nil, nil
	}
	if p.UUID == "" || p.State == "" {
		return nil, nil // not an instance payload (instance.exists carries one; others may not)
	}
	at, err := time.Parse("2006-01-02 15:04:05.999999", stamp)
	if err != nil {
		return nil, fmt.Errorf("decode %s timestamp %q: %w", evType, stamp, err)
	}
	ev := &serverEvent{id: p.UUID, project: p.TenantID, reqID: p.RequestID, name: evType, at: at,
		failed: strings.HasSuffix(evType, ".error") || priority == "ERROR", payload: p}
	ev.obs = p.observation()
	return ev, nil
}

// observation is what the payload says of the server, in the API's terms
// (without the server record: see serverEvent.decided).
func (p *instancePayload) observation() *observation {
	o := &observation{ID: p.UUID, Status: novaStatus(p.State, p.TaskState), TaskState: p.TaskState, Gone: p.State == "deleted"}
	if p.Fault != nil {
		o.Fault = &faultInfo{Message: p.Fault.Data.Message}
	}
	for _, b := range p.BlockDevices {
		o.Servers = append(o.Servers, b.Data.VolumeID)
	}
	return o
}

// server is the server record the payload describes: what an operation
// completed by an event resolves with. Fields that only the API shows
// (links, security groups, the fault's code) are left empty.
func (p *instancePayload) server(status string) *servers.Server {
	s := &servers.Server{ID: p.UUID, TenantID: p.TenantID, UserID: p.UserID, Name: p.DisplayName, Status: status,
		Progress: p.Progress, KeyName: p.KeyName, Metadata: p.Metadata, Host: p.Host, HypervisorHostname: p.Node,
		TaskState: p.TaskState, VmState: p.State, AvailabilityZone: p.AZ, Locked: &p.Locked,
		Created: novaTime(p.CreatedAt), Updated: novaTime(p.UpdatedAt), LaunchedAt: novaTime(p.LaunchedAt),
		TerminatedAt: novaTime(p.TerminatedAt)}
	if p.HostName != "" {
		s.Hostname = &p.HostName
	}
	if p.ImageUUID != "" {
		s.Image = map[string]any{"id": p.ImageUUID}
	}
	if p.Flavor != nil {
		f := p.Flavor.Data
		s.Flavor = map[string]any{"original_name": f.Name, "ram": f.MemoryMB, "vcpus": f.VCPUs, "disk": f.RootGB,
			"ephemeral": f.EphemeralGB, "swap": f.Swap}
	}
	if len(p.IPAddresses) > 0 {
		addrs := map[string]any{}
		for _, ip := range p.IPAddresses {
			l, _ := addrs[ip.Data.Label].([]any)
			addrs[ip.Data.Label] = append(l, map[string]any{"addr": ip.Data.Address, "version": ip.Data.Version,
				"OS-EXT-IPS-MAC:mac_addr": ip.Data.MAC})
		}
		s.Addresses = addrs
	}
	for _, b := range p.BlockDevices {
		s.AttachedVolumes = append(s.AttachedVolumes, servers.AttachedVolume{ID: b.Data.VolumeID})
	}
	return s
}

// novaTime parses a versioned object's DateTimeField ("2026-11-27T13:25:29Z").
func novaTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999", "2006-01-02 15:04:05.999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// novaStatus maps (vm_state, task_state) to the API's status as
// nova/api/openstack/common.py's _STATE_MAP does.
func novaStatus(vm, task string) string {
	resizing := task == "resize_prep" || task == "resize_migrating" || task == "resize_migrated" || task == "resize_finish"
	rebuilding := task == "rebuilding" || task == "rebuild_block_device_mapping" || task == "rebuild_spawning"
	switch vm {
	case "active":
		switch {
		case task == "rebooting" || task == "reboot_pending" || task == "reboot_started":
			return "REBOOT"
		case task == "rebooting_hard" || task == "reboot_pending_hard" || task == "reboot_started_hard":
			return "HARD_REBOOT"
		case task == "updating_password":
			return "PASSWORD"
		case rebuilding:
			return "REBUILD"
		case task == "migrating":
			return "MIGRATING"
		case resizing:
			return "RESIZE"
		}
		return StatusActive
	case "building":
		return "BUILD"
	case "stopped":
		switch {
		case resizing:
			return "RESIZE"
		case rebuilding:
			return "REBUILD"
		}
		return StatusShutoff
	case "resized":
		if task == "resize_reverting" {
			return "REVERT_RESIZE"
		}
		return StatusVerifyResize
	case "paused":
		if task == "migrating" {
			return "MIGRATING"
		}
		return "PAUSED"
	case "suspended":
		return "SUSPENDED"
	case "rescued":
		return "RESCUE"
	case "error":
		if rebuilding {
			return "REBUILD"
		}
		return StatusError
	case "deleted":
		return StatusDeleted
	case "soft-delete":
		return "SOFT_DELETED"
	case "shelved":
		return "SHELVED"
	case "shelved_offloaded":
		return "SHELVED_OFFLOADED"
	}
	return "UNKNOWN"
}
