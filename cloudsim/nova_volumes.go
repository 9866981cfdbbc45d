package cloudsim

import (
	"encoding/json"
	"net/http"
	"regexp"
	"time"
)

// attachStates are the vm_states in which Nova attaches and detaches
// volumes (task_state must be null).
var attachStates = []string{vmActive, vmPaused, vmStopped, vmResized, vmSoftDel, vmShelved, vmShelvedOf}

var devicePathRE = regexp.MustCompile(`^/dev/x?[a-z]?d?[a-z]+[0-9]*$`)

// nextDevice picks the first free /dev/vdX after the root disk.
func nextDevice(sv *server, pending []bootVolume) string {
	used := map[string]bool{"/dev/vda": true}
	for _, v := range sv.Volumes {
		used[v.Device] = true
	}
	for _, p := range pending {
		used[p.sv.Device] = true
	}
	for c := 'b'; c <= 'z'; c++ {
		d := "/dev/vd" + string(c)
		if !used[d] {
			return d
		}
	}
	return "/dev/vdz"
}

// setAttachStatus sets the Cinder attachment status of serverID's
// attachment on v. Callers hold s.mu.
func setAttachStatus(v *volume, serverID, status, host string) {
	for _, a := range v.Attachments {
		if a.ServerID == serverID {
			a.Status = status
			if host != "" {
				a.HostName = host
			}
		}
	}
}

// detachVolumeRecord removes serverID's attachments from v, cancels any
// attach/detach walk on v, and frees v when no attachment remains.
// Callers hold s.mu.
func (s *Sim) detachVolumeRecord(v *volume, serverID string, now time.Time) {
	kept := v.Attachments[:0]
	for _, a := range v.Attachments {
		if a.ServerID != serverID {
			kept = append(kept, a)
		}
	}
	v.Attachments = kept
	v.gen++
	if len(v.Attachments) == 0 {
		s.setVolumeStatus(v, "available", now)
	} else {
		s.setVolumeStatus(v, "in-use", now)
	}
}

func removeServerVolume(sv *server, bv *serverVolume) {
	kept := sv.Volumes[:0]
	for _, v := range sv.Volumes {
		if v != bv {
			kept = append(kept, v)
		}
	}
	sv.Volumes = kept
}

func (s *Sim) attachmentView(rc *reqCtx, sv *server, bv *serverVolume, create bool) map[string]any {
	v := map[string]any{"device": bv.Device, "serverId": sv.ID, "volumeId": bv.VolumeID}
	if create || !rc.MV.AtLeast(2, 89) {
		v["id"] = bv.VolumeID
	} else {
		v["attachment_id"] = bv.AttachmentID
		v["bdm_uuid"] = bv.BDMUUID
	}
	if rc.MV.AtLeast(2, 70) {
		v["tag"] = nilIfEmpty(bv.Tag)
	}
	if rc.MV.AtLeast(2, 79) {
		v["delete_on_termination"] = bv.DeleteOnTerm
	}
	return v
}

func (s *Sim) attachVolume(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	body, e := decodeObject(r)
	if e != nil {
		return e
	}
	va, _, e := subObject(body, "volumeAttachment", "volumeAttachment", true)
	if e != nil {
		return e
	}
	for k := range va {
		switch {
		case k == "volumeId" || k == "device":
		case k == "tag" && rc.MV.AtLeast(2, 49):
		case k == "delete_on_termination" && rc.MV.AtLeast(2, 79):
		default:
			return errAdditional("volumeAttachment", body["volumeAttachment"], k)
		}
	}
	if _, ok := va["volumeId"]; !ok {
		return errRequired("volumeAttachment", body["volumeAttachment"], "volumeId")
	}
	volID, _, e := stringField(va, "volumeId", false)
	if e != nil {
		return e
	}
	if !validUUID(volID) {
		return errNotUUID("volumeId", volID)
	}
	device, _, e := stringField(va, "device", true)
	if e != nil {
		return e
	}
	if device != "" && !devicePathRE.MatchString(device) {
		return errf(400, "The supplied device path (%s) is invalid.", device)
	}
	tag, _, e := stringField(va, "tag", true)
	if e != nil {
		return e
	}
	dot := false
	if raw, ok := va["delete_on_termination"]; ok {
		if jsonKind(raw) != "boolean" {
			return errType("delete_on_termination", raw, "boolean")
		}
		_ = json.Unmarshal(raw, &dot)
	}

	defer s.lockNow()()
	sv, e := s.findServer(rc, r.PathValue("id"), false)
	if e != nil {
		return e
	}
	if e := checkStateAs(rc, sv, "attach_volume", attachStates, nil); e != nil {
		return e
	}
	v := s.liveVolume(volID)
	if v == nil || (!rc.isAdmin() && v.ProjectID != rc.projectID()) {
		return errf(404, "Volume %s could not be found.", volID)
	}
	for _, bv := range sv.Volumes {
		if bv.VolumeID == volID {
			return errf(400, "Invalid volume: volume %s already attached", volID)
		}
		if device != "" && bv.Device == device {
			return errf(400, "The supplied device path (%s) is in use.", device)
		}
	}
	if v.Status != "available" {
		return errf(409, "Invalid volume: Volume %s status must be available or downloading to reserve, but the current status is %s.", v.ID, v.Status)
	}
	o := s.decide(OpVolumeAttach, v.Name)
	if e := scriptedAPIFault(o, rc); e != nil {
		return e
	}
	now := s.clock.Now()
	a := s.recordAction(sv, rc, "attach_volume", now)
	ev := s.beginEvent(sv, a, "compute_attach_volume", now)
	bv := &serverVolume{AttachmentID: newUUID(), BDMUUID: newUUID(), VolumeID: v.ID, Device: device, Tag: tag, DeleteOnTerm: dot}
	if bv.Device == "" {
		bv.Device = nextDevice(sv, nil)
	}
	sv.Volumes = append(sv.Volumes, bv)
	s.setVolumeStatus(v, "reserved", now)
	v.Attachments = append(v.Attachments, &volAttachment{ID: bv.AttachmentID, ServerID: sv.ID, Device: bv.Device, Status: "reserved"})
	steps := []step{{D: s.timing.AttachStep, Fn: func(now time.Time) {
		s.setVolumeStatus(v, "attaching", now)
		setAttachStatus(v, sv.ID, "attaching", sv.Host)
	}}}
	switch o.kind {
	case FaultHang:
	case FaultError, FaultRollback:
		steps = append(steps, step{D: s.timing.AttachStep, Fn: func(now time.Time) {
			msg := o.message
			if msg == "" {
				msg = "Connection to the hypervisor is broken on host"
			}
			s.endEvent(a, ev, false, msg, now)
			removeServerVolume(sv, bv)
			s.detachVolumeRecord(v, sv.ID, now)
		}})
	default:
		steps = append(steps, step{D: s.timing.AttachStep, Fn: func(now time.Time) {
			s.setVolumeStatus(v, "in-use", now)
			setAttachStatus(v, sv.ID, "attached", sv.Host)
			for _, at := range v.Attachments {
				if at.ServerID == sv.ID {
					at.AttachedAt = now.UTC()
				}
			}
			s.endEvent(a, ev, true, "", now)
		}})
	}
	s.walk(&v.resBase, steps...)
	if o.kind == FaultLoseResponse {
		rc.LoseResponse()
	}
	// From 2.101 Nova answers 202 without a body; the simulator stops at 2.100.
	writeJSON(w, 200, map[string]any{"volumeAttachment": s.attachmentView(rc, sv, bv, true)})
	return nil
}

func (s *Sim) listVolumeAttachments(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	defer s.lockNow()()
	sv, e := s.findServer(rc, r.PathValue("id"), false)
	if e != nil {
		return e
	}
	q := r.URL.Query()
	limit, e := s.limitParam(q.Get("limit"), q.Has("limit"))
	if e != nil {
		return e
	}
	offset := 0
	if v := q.Get("offset"); v != "" {
		n, ok := intValue(json.RawMessage(`"` + v + `"`))
		if !ok || n < 0 {
			return errf(400, "offset param must be positive")
		}
		offset = n
	}
	out := []any{}
	for _, bv := range sv.Volumes {
		if bv.VolumeID == "" {
			continue
		}
		if offset > 0 {
			offset--
			continue
		}
		if len(out) == limit {
			break
		}
		out = append(out, s.attachmentView(rc, sv, bv, false))
	}
	writeJSON(w, 200, map[string]any{"volumeAttachments": out})
	return nil
}

func (s *Sim) serverVolumeByID(sv *server, volID string) *serverVolume {
	for _, bv := range sv.Volumes {
		if bv.VolumeID == volID && volID != "" {
			return bv
		}
	}
	return nil
}

func (s *Sim) showVolumeAttachment(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	defer s.lockNow()()
	sv, e := s.findServer(rc, r.PathValue("id"), false)
	if e != nil {
		return e
	}
	bv := s.serverVolumeByID(sv, r.PathValue("vol"))
	if bv == nil {
		return errf(404, "Volume %s is not attached to %s", r.PathValue("vol"), sv.ID)
	}
	writeJSON(w, 200, map[string]any{"volumeAttachment": s.attachmentView(rc, sv, bv, false)})
	return nil
}

func (s *Sim) detachVolume(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	defer s.lockNow()()
	sv, e := s.findServer(rc, r.PathValue("id"), false)
	if e != nil {
		return e
	}
	volID := r.PathValue("vol")
	bv := s.serverVolumeByID(sv, volID)
	if bv == nil {
		return errf(404, "Volume %s is not attached to %s", volID, sv.ID)
	}
	if bv.Boot {
		return errf(400, "Cannot detach a root device volume")
	}
	if e := checkStateAs(rc, sv, "detach_volume", attachStates, nil); e != nil {
		return e
	}
	v := s.liveVolume(volID)
	if v == nil {
		return errf(404, "Volume %s could not be found.", volID)
	}
	if v.Status != "in-use" {
		return errf(400, "Invalid volume: Unable to detach volume. Volume status must be 'in-use' and attach_status must be 'attached' to detach.")
	}
	o := s.decide(OpVolumeDetach, v.Name)
	if e := scriptedAPIFault(o, rc); e != nil {
		return e
	}
	now := s.clock.Now()
	a := s.recordAction(sv, rc, "detach_volume", now)
	ev := s.beginEvent(sv, a, "compute_detach_volume", now)
	s.setVolumeStatus(v, "detaching", now)
	setAttachStatus(v, sv.ID, "detaching", "")
	switch o.kind {
	case FaultHang:
		s.walk(&v.resBase)
	case FaultError, FaultRollback:
		s.walk(&v.resBase, step{D: s.timing.DetachStep, Fn: func(now time.Time) {
			msg := o.message
			if msg == "" {
				msg = "Failed to detach volume: device is busy"
			}
			s.endEvent(a, ev, false, msg, now)
			s.setVolumeStatus(v, "in-use", now)
			setAttachStatus(v, sv.ID, "attached", "")
		}})
	default:
		s.walk(&v.resBase, step{D: s.timing.DetachStep, Fn: func(now time.Time) {
			s.endEvent(a, ev, true, "", now)
			removeServerVolume(sv, bv)
			s.detachVolumeRecord(v, sv.ID, now)
		}})
	}
	if o.kind == FaultLoseResponse {
		rc.LoseResponse()
	}
	w.WriteHeader(202)
	return nil
}
