package cloudsim

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Cinder v3, as cinder/api/v3/volumes.py, cinder/api/contrib/volume_actions.py,
// cinder/api/v3/volume_metadata.py and cinder/volume/api.py answer: every
// mutating call returns at once and the volume walks through Cinder's
// statuses on the simulator's clock.

// Fixed identities of the simulated block storage service.
const (
	// DefaultVolumeTypeID is the id of the "__DEFAULT__" volume type.
	DefaultVolumeTypeID  = "5fed9d7c-401d-46e2-8e80-f30c70cb7e1d"
	lvmVolumeTypeID      = "9c1a4f62-3b7e-4d08-a5c2-7e6f1d2b8a90"
	defaultVolumeType    = "__DEFAULT__"
	cinderBackendHost    = "cloudsim@lvmdriver-1#lvmdriver-1"
	cinderServiceUUID    = "3f6d8b1e-2a4c-4e7f-9b05-c8d1a6e2f473"
	cinderVersionUpdated = "2023-08-31T00:00:00Z"
	cinderVolumeAZ       = "nova"
)

// volumeTypeLookup resolves a volume type given by name or id, as
// objects.VolumeType.get_by_name_or_id does.
func volumeTypeLookup(ref string) (name, id string, e *apiError) {
	switch ref {
	case defaultVolumeType, DefaultVolumeTypeID:
		return defaultVolumeType, DefaultVolumeTypeID, nil
	case "lvmdriver-1", lvmVolumeTypeID:
		return "lvmdriver-1", lvmVolumeTypeID, nil
	}
	if validUUID(ref) {
		return "", "", errf(404, "Volume type %s could not be found.", ref)
	}
	return "", "", errf(404, "Volume type with name %s could not be found.", ref)
}

func (s *Sim) registerVolume(mux *http.ServeMux) {
	noAuth := routeOpts{noAuth: true}
	// The unversioned root is outside the authenticated pipeline
	// (api-paste: "/: apiversions") and answers 300; /v3/ is inside it.
	all := func(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
		writeJSON(w, http.StatusMultipleChoices, cinderVersions(r))
		return nil
	}
	s.handle(mux, svcVolume, "GET /volume/{$}", all, noAuth)
	s.handle(mux, svcVolume, "GET /volume", all, noAuth)
	v3 := func(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
		writeJSON(w, http.StatusOK, cinderVersions(r))
		return nil
	}
	s.handle(mux, svcVolume, "GET "+volumePrefix+"/{$}", v3)
	s.handle(mux, svcVolume, "GET "+volumePrefix, v3)

	p := volumePrefix + "/{project_id}/volumes"
	s.handle(mux, svcVolume, "POST "+p, s.createVolume)
	s.handle(mux, svcVolume, "GET "+p, s.listVolumes(false))
	s.handle(mux, svcVolume, "GET "+p+"/detail", s.listVolumes(true))
	s.handle(mux, svcVolume, "GET "+p+"/{volume_id}", s.showVolume)
	s.handle(mux, svcVolume, "PUT "+p+"/{volume_id}", s.updateVolume)
	s.handle(mux, svcVolume, "DELETE "+p+"/{volume_id}", s.deleteVolume)
	s.handle(mux, svcVolume, "POST "+p+"/{volume_id}/action", s.volumeAction)
	s.handle(mux, svcVolume, "GET "+p+"/{volume_id}/metadata", s.getVolumeMetadata)
	s.handle(mux, svcVolume, "POST "+p+"/{volume_id}/metadata", s.setVolumeMetadata(false))
	s.handle(mux, svcVolume, "PUT "+p+"/{volume_id}/metadata", s.setVolumeMetadata(true))
	s.handle(mux, svcVolume, "GET "+p+"/{volume_id}/metadata/{key}", s.getVolumeMetadataItem)
	s.handle(mux, svcVolume, "PUT "+p+"/{volume_id}/metadata/{key}", s.setVolumeMetadataItem)
	s.handle(mux, svcVolume, "DELETE "+p+"/{volume_id}/metadata/{key}", s.deleteVolumeMetadataItem)
}

// requestBase is the scheme and host the client used, which is what Cinder
// and Glance build their links from.
func requestBase(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func cinderVersions(r *http.Request) map[string]any {
	return map[string]any{"versions": []any{map[string]any{
		"id": "v3.0", "status": "CURRENT", "version": VolumeMaxMicroversion, "min_version": VolumeMinMicroversion,
		"updated": cinderVersionUpdated,
		"links": []any{
			map[string]any{"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
			map[string]any{"rel": "self", "href": requestBase(r) + volumePrefix + "/"},
		},
		"media-types": []any{map[string]any{"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}},
	}}}
}

// checkProject is Cinder's check that the project in the URL is the
// caller's (cinder/api/openstack/wsgi.py: "Malformed request url").
func checkProject(r *http.Request, rc *reqCtx) *apiError {
	if r.PathValue("project_id") != rc.projectID() {
		return errf(400, "Malformed request url")
	}
	return nil
}

// findVolume returns the volume the caller may see. Admins see every
// project's volumes; anyone else gets 404 for a volume of another project.
// Callers hold s.mu.
func (s *Sim) findVolume(rc *reqCtx, id string) (*volume, *apiError) {
	v := s.liveVolume(id)
	if v == nil || (!rc.isAdmin() && v.ProjectID != rc.projectID()) {
		return nil, errf(404, "Volume %s could not be found.", id)
	}
	return v, nil
}

// volumeCreateReq is a validated POST /volumes body.
type volumeCreateReq struct {
	name, description string
	volumeType        string
	az                string
	imageRef          *string
	size              int // 0: not given
	metadata          map[string]string
	snapshotID        string
	sourceVolID       string
	groupID           string
	backupID          string
	multiattach       bool
}

// parseVolumeCreate validates the body like cinder/api/schemas/volumes.py.
func parseVolumeCreate(body any, mv microversion) (*volumeCreateReq, *apiError) {
	if e := checkType("", body, "object"); e != nil {
		return nil, e
	}
	top := body.(map[string]any)
	if e := requireKey("", top, "volume"); e != nil {
		return nil, e
	}
	if e := checkOnlyKeys("", top, "volume", "OS-SCH-HNT:scheduler_hints"); e != nil {
		return nil, e
	}
	if h, ok := top["OS-SCH-HNT:scheduler_hints"]; ok {
		if e := checkType("OS-SCH-HNT:scheduler_hints", h, "object", "null"); e != nil {
			return nil, e
		}
	}
	if e := checkType("volume", top["volume"], "object"); e != nil {
		return nil, e
	}
	vol := top["volume"].(map[string]any)
	known := []string{"name", "description", "display_name", "display_description", "volume_type", "metadata",
		"snapshot_id", "source_volid", "consistencygroup_id", "size", "availability_zone", "multiattach",
		"image_id", "imageRef"}
	if mv.AtLeast(3, 13) {
		known = append(known, "group_id")
	}
	if mv.AtLeast(3, 47) {
		known = append(known, "backup_id")
	}
	if mv.AtLeast(3, 53) {
		if e := checkOnlyKeys("volume", vol, known...); e != nil {
			return nil, e
		}
	}
	req := &volumeCreateReq{}
	var e *apiError
	str := func(key string, minLen, maxLen int) string {
		v, ok := vol[key]
		if !ok || e != nil {
			return ""
		}
		var s string
		s, e = checkStringField(key, v, minLen, maxLen)
		return s
	}
	uuidField := func(key string) string {
		v, ok := vol[key]
		if !ok || e != nil {
			return ""
		}
		var s string
		s, e = checkOptionalUUID(key, v)
		return s
	}
	// Cinder strips surrounding whitespace from names and descriptions;
	// "name" and "description" win over their display_ aliases.
	pick := func(key, alias string, maxLen int) string {
		a := str(alias, 0, maxLen)
		if _, ok := vol[key]; ok {
			return strings.TrimSpace(str(key, 0, maxLen))
		}
		return strings.TrimSpace(a)
	}
	req.name = pick("name", "display_name", 255)
	req.description = pick("description", "display_description", 0)
	req.volumeType = str("volume_type", 0, 255)
	if md, ok := vol["metadata"]; ok && e == nil {
		req.metadata, e = checkMetadata("metadata", md, true)
	}
	req.snapshotID = uuidField("snapshot_id")
	req.sourceVolID = uuidField("source_volid")
	req.groupID = uuidField("consistencygroup_id")
	if sz, ok := vol["size"]; ok && e == nil {
		req.size, e = checkVolumeSize("size", sz, true)
	}
	req.az = str("availability_zone", 1, 255)
	if ma, ok := vol["multiattach"]; ok && e == nil {
		req.multiattach, e = checkOptionalBool("multiattach", ma)
	}
	// image_id is an alias of imageRef and wins over it.
	for _, key := range []string{"imageRef", "image_id"} {
		if ref := str(key, 0, 255); vol[key] != nil && e == nil {
			req.imageRef = &ref
		}
	}
	if mv.AtLeast(3, 13) {
		if g := str("group_id", 0, 255); g != "" {
			req.groupID = g
		}
	}
	if mv.AtLeast(3, 47) {
		req.backupID = uuidField("backup_id")
	}
	if e != nil {
		return nil, e
	}
	return req, nil
}

func (s *Sim) createVolume(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	body, e := decodeJSONAny(r)
	if e != nil {
		return e
	}
	if e := checkProject(r, rc); e != nil {
		return e
	}
	req, e := parseVolumeCreate(body, rc.MV)
	if e != nil {
		return e
	}
	defer s.lockNow()()
	now := s.clock.Now()

	// The same checks, in the same order, as VolumeController.create,
	// API.create and the create flow's ExtractVolumeRequestTask.
	typeName := defaultVolumeType
	if req.volumeType != "" {
		name, _, e := volumeTypeLookup(req.volumeType)
		if e != nil {
			return e
		}
		typeName = name
	}
	if req.snapshotID != "" {
		return errf(404, "Snapshot %s could not be found.", req.snapshotID)
	}
	var source *volume
	if req.sourceVolID != "" {
		src, e := s.findVolume(rc, req.sourceVolID)
		if e != nil {
			return e
		}
		source = src
	}
	if req.groupID != "" {
		return errf(404, "Group %s could not be found.", req.groupID)
	}
	var img *image
	if req.imageRef != nil {
		im, e := s.imageForVolume(rc, *req.imageRef)
		if e != nil {
			return e
		}
		img = im
	}
	if req.backupID != "" {
		return errf(404, "Backup %s could not be found.", req.backupID)
	}
	if req.multiattach {
		return errf(400, "multiattach parameter has been removed. The default behavior is to use multiattach enabled volume types. Contact your administrator to create a multiattach enabled volume type and use it to create multiattach volumes.")
	}
	size := req.size
	if size == 0 && source != nil {
		size = source.Size
	}
	if size == 0 {
		return errf(400, "Invalid input received: Volume size 'None' must be an integer and greater than 0")
	}
	if source != nil && size < source.Size {
		return errf(400, "Invalid input received: Volume size '%d'GB cannot be smaller than original volume size  %dGB. They must be >= original volume size.", size, source.Size)
	}
	if img != nil {
		if img.Status != "active" {
			return errf(400, "Invalid input received: Image %s is not active.", img.ID)
		}
		if gb := (img.Size + (1<<30 - 1)) >> 30; gb > int64(size) {
			return errf(400, "Invalid input received: Size of specified image %dGB is larger than volume size %dGB.", gb, size)
		}
		if img.MinDisk > size {
			return errf(400, "Invalid input received: Volume size %dGB cannot be smaller than the image minDisk size %dGB.", size, img.MinDisk)
		}
	}
	az := cinderVolumeAZ
	if req.az != "" {
		if req.az != cinderVolumeAZ {
			return errf(400, "Availability zone '%s' is invalid.", req.az)
		}
	} else if source != nil {
		az = source.AZ
	}

	o := s.decide(OpVolumeCreate, req.name)
	if e := scriptedAPIFault(o, rc); e != nil {
		return e
	}
	imageID := ""
	if img != nil {
		imageID = img.ID
	}
	v := s.newVolumeLocked(rc.projectID(), rc.userID(), req.name, size, imageID, req.metadata, now)
	v.Description = req.description
	v.VolumeType = typeName
	v.AZ = az
	if source != nil {
		v.SourceVol = source.ID
	}
	s.startVolumeCreate(v, o, nil)
	view := s.volumeView(r, rc, v, false)
	view["created_at"] = fmtNoZFrac(v.Created) // the API answers before the row is read back
	writeJSON(w, http.StatusAccepted, map[string]any{"volume": view})
	return nil
}

// startVolumeCreate starts the create walk of v, a volume just made by
// newVolumeLocked: creating → available, or creating → downloading →
// available when it is made from an image (bootable turns "true" and
// volume_image_metadata appears only when the copy is done, as in Cinder's
// create flow), or from a source volume (a clone). o is the fault chosen
// for the operation: FaultError ends in "error" with no fault message (real
// Cinder records nothing on the volume; only the user-messages API says
// why), FaultHang leaves it in "creating" forever; other kinds do not
// affect the walk. done, if not nil, runs under s.mu when the walk ends,
// with the final status; a hung walk never calls it. Nova uses this for
// boot volumes. Callers hold s.mu.
func (s *Sim) startVolumeCreate(v *volume, o outcome, done func(now time.Time, status string)) {
	finish := func(now time.Time, status string) {
		s.setVolumeStatus(v, status, now)
		if done != nil {
			done(now, status)
		}
	}
	var copyMeta map[string]string
	var bootable bool
	switch {
	case v.ImageID != "":
		if im := s.liveImage(v.ImageID); im != nil {
			copyMeta = volumeImageMeta(im)
		} else {
			copyMeta = map[string]string{"image_id": v.ImageID}
		}
		bootable = true
		v.Bootable = false
	case v.SourceVol != "":
		if src := s.liveVolume(v.SourceVol); src != nil {
			copyMeta = cloneMap(src.ImageMeta)
			bootable = src.Bootable
		}
	}
	if o.kind == FaultHang {
		s.walk(&v.resBase) // cancels nothing new, but owns the volume's gen
		return
	}
	d := s.timing.VolumeCreate
	complete := func(now time.Time) {
		if o.kind == FaultError {
			finish(now, "error")
			return
		}
		v.Bootable = bootable
		if copyMeta != nil {
			v.ImageMeta = copyMeta
		}
		finish(now, "available")
	}
	if v.ImageID != "" {
		s.walk(&v.resBase,
			step{d, func(now time.Time) { s.setVolumeStatus(v, "downloading", now) }},
			step{d, complete})
		return
	}
	s.walk(&v.resBase, step{d, complete})
}

// volumeImageMeta is the volume_image_metadata Cinder copies from Glance:
// the image's core attributes and properties, all as strings.
func volumeImageMeta(im *image) map[string]string {
	m := map[string]string{
		"image_id": im.ID, "image_name": im.Name, "container_format": im.ContainerFormat,
		"disk_format": im.DiskFormat, "min_disk": fmt.Sprint(im.MinDisk), "min_ram": fmt.Sprint(im.MinRAM),
		"size": fmt.Sprint(im.Size),
	}
	if sum := imageChecksum(im); sum != "" {
		m["checksum"] = sum
	}
	for k, v := range im.Properties {
		m[k] = v
	}
	return m
}

// imageForVolume resolves an imageRef as VolumeController._image_uuid_from_ref
// does: the last path segment as an image id, else as an image name.
// Callers hold s.mu.
func (s *Sim) imageForVolume(rc *reqCtx, ref string) (*image, *apiError) {
	id := ref[strings.LastIndex(ref, "/")+1:]
	if validUUID(id) {
		if im := s.liveImage(id); im != nil && s.imageVisible(rc, im) {
			return im, nil
		}
	}
	var found []*image
	for _, im := range s.imageOrder {
		if !im.Deleted && im.Name == ref && s.imageVisible(rc, im) {
			found = append(found, im)
		}
	}
	if len(found) > 1 {
		return nil, errf(409, "Multiple matches found for '%s', use an ID to be more specific.", ref)
	}
	if len(found) == 1 {
		return found[0], nil
	}
	return nil, errf(400, "Invalid image identifier or unable to access requested image.")
}

func (s *Sim) showVolume(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if e := checkProject(r, rc); e != nil {
		return e
	}
	defer s.lockNow()()
	v, e := s.findVolume(rc, r.PathValue("volume_id"))
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, map[string]any{"volume": s.volumeView(r, rc, v, true)})
	return nil
}

func (s *Sim) updateVolume(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	top, e := wrappedBody(r, rc, "volume")
	if e != nil {
		return e
	}
	if e := checkType("volume", top["volume"], "object"); e != nil {
		return e
	}
	vol := top["volume"].(map[string]any)
	if e := checkOnlyKeys("volume", vol, "name", "description", "display_name", "display_description", "metadata"); e != nil {
		return e
	}
	if rc.MV.AtLeast(3, 53) && len(vol) == 0 {
		return invalidField("volume", vol, "{} is not valid under any of the given schemas")
	}
	var name, desc *string
	for _, key := range []string{"display_name", "name", "display_description", "description"} {
		raw, ok := vol[key]
		if !ok {
			continue
		}
		maxLen := 255
		if strings.HasSuffix(key, "description") {
			maxLen = 0
		}
		sv, e := checkStringField(key, raw, 0, maxLen)
		if e != nil {
			return e
		}
		sv = strings.TrimSpace(sv)
		if strings.HasSuffix(key, "name") {
			name = &sv
		} else {
			desc = &sv
		}
	}
	var md map[string]string
	if raw, ok := vol["metadata"]; ok {
		if md, e = checkMetadata("metadata", raw, false); e != nil {
			return e
		}
	}
	defer s.lockNow()()
	v, e := s.findVolume(rc, r.PathValue("volume_id"))
	if e != nil {
		return e
	}
	if v.Status == "maintenance" {
		return errf(400, "Invalid volume: The volume cannot be updated during maintenance.")
	}
	if name != nil {
		v.Name = *name
	}
	if desc != nil {
		v.Description = *desc
	}
	if md != nil {
		v.Metadata = md
	}
	v.Updated = s.clock.Now().UTC()
	writeJSON(w, http.StatusOK, map[string]any{"volume": s.volumeView(r, rc, v, true)})
	return nil
}

// deletableVolumeStatuses are the statuses API.delete accepts without force.
var deletableVolumeStatuses = []string{"available", "error", "error_restoring", "error_extending", "error_managing"}

func (s *Sim) deleteVolume(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if e := checkProject(r, rc); e != nil {
		return e
	}
	q := r.URL.Query()
	force := false
	if rc.MV.AtLeast(3, 23) {
		force, _ = parseBoolString(q.Get("force"))
	}
	defer s.lockNow()()
	v, e := s.findVolume(rc, r.PathValue("volume_id"))
	if e != nil {
		return e
	}
	if force && !rc.isAdmin() {
		return errf(403, "Policy doesn't allow volume:force_delete to be performed.")
	}
	ok := force || contains(deletableVolumeStatuses, v.Status)
	for _, a := range v.Attachments {
		if a.Status == "attached" || a.Status == "detaching" {
			ok = false // attach_status is still "attached"
		}
	}
	if !ok {
		status := ""
		if !force {
			status = "status must be " + strings.Join(deletableVolumeStatuses, " or ") + " and"
		}
		return errf(400, "Invalid volume: Volume %s must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer.", status)
	}
	o := s.decide(OpVolumeDelete, v.Name)
	if e := scriptedAPIFault(o, rc); e != nil {
		return e
	}
	now := s.clock.Now()
	s.setVolumeStatus(v, "deleting", now)
	switch o.kind {
	case FaultHang:
		s.walk(&v.resBase) // stays "deleting"; cancels whatever was in flight
	default:
		s.walk(&v.resBase, step{s.timing.VolumeDelete, func(now time.Time) {
			if o.kind == FaultError {
				s.setVolumeStatus(v, "error_deleting", now)
				return
			}
			s.removeVolumeLocked(v)
		}})
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// volumeAction dispatches POST /volumes/{id}/action on the single key of
// the body, as Cinder's action_peek_json does.
func (s *Sim) volumeAction(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	body, e := decodeJSONAny(r)
	if e != nil {
		return e
	}
	obj, ok := body.(map[string]any)
	if !ok || len(obj) != 1 {
		return errf(400, "Malformed request body")
	}
	var action string
	for k := range obj {
		action = k
	}
	switch action {
	case "os-extend":
		if e := checkProject(r, rc); e != nil {
			return e
		}
		return s.extendVolume(w, r, rc, obj)
	}
	return errf(400, "There is no such action: %s. Verify the request body and Content-Type header and try again.", action)
}

func (s *Sim) extendVolume(w http.ResponseWriter, r *http.Request, rc *reqCtx, body map[string]any) error {
	raw := body["os-extend"]
	if e := checkType("os-extend", raw, "object"); e != nil {
		return e
	}
	ext := raw.(map[string]any)
	if e := requireKey("os-extend", ext, "new_size"); e != nil {
		return e
	}
	if e := checkOnlyKeys("os-extend", ext, "new_size"); e != nil {
		return e
	}
	newSize, e := checkVolumeSize("new_size", ext["new_size"], false)
	if e != nil {
		return e
	}
	defer s.lockNow()()
	v, e := s.findVolume(rc, r.PathValue("volume_id"))
	if e != nil {
		return e
	}
	if newSize <= v.Size {
		return errf(400, "Invalid input received: New size for extend must be greater than current size. (current: %d, extended: %d).", v.Size, newSize)
	}
	want := "available"
	if rc.MV.AtLeast(3, 42) && v.Status == "in-use" {
		want = "in-use"
	}
	if v.Status != want {
		return errf(400, "Invalid volume: Volume %s status must be '{'status': '%s'}' to extend, currently %s.", v.ID, want, v.Status)
	}
	o := s.decide(OpVolumeExtend, v.Name)
	if e := scriptedAPIFault(o, rc); e != nil {
		return e
	}
	v.PrevStatus = v.Status
	s.setVolumeStatus(v, "extending", s.clock.Now())
	switch o.kind {
	case FaultHang:
		s.walk(&v.resBase)
	default:
		s.walk(&v.resBase, step{s.timing.VolumeExtend, func(now time.Time) {
			if o.kind == FaultError {
				s.setVolumeStatus(v, "error_extending", now)
				return
			}
			v.Size = newSize
			s.setVolumeStatus(v, v.PrevStatus, now)
		}})
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Sim) getVolumeMetadata(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if e := checkProject(r, rc); e != nil {
		return e
	}
	defer s.lockNow()()
	v, e := s.findVolume(rc, r.PathValue("volume_id"))
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, map[string]any{"metadata": metadataView(v.Metadata)})
	return nil
}

// setVolumeMetadata is POST (merge, replace=false) and PUT (replace) on
// /volumes/{id}/metadata; both answer with the whole resulting metadata.
func (s *Sim) setVolumeMetadata(replace bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
		top, e := wrappedBody(r, rc, "metadata")
		if e != nil {
			return e
		}
		md, e := checkMetadata("metadata", top["metadata"], false)
		if e != nil {
			return e
		}
		defer s.lockNow()()
		v, e := s.findVolume(rc, r.PathValue("volume_id"))
		if e != nil {
			return e
		}
		if e := metadataMutable(v, "Updating"); e != nil {
			return e
		}
		if replace {
			v.Metadata = md
		} else {
			for k, val := range md {
				v.Metadata[k] = val
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"metadata": metadataView(v.Metadata)})
		return nil
	}
}

func metadataMutable(v *volume, verb string) *apiError {
	if v.Status == "maintenance" || v.Status == "uploading" {
		return errf(400, "Invalid volume: %s volume metadata is not allowed for volumes in %s status.", verb, v.Status)
	}
	return nil
}

func metadataView(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return cloneMap(m)
}

func (s *Sim) getVolumeMetadataItem(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if e := checkProject(r, rc); e != nil {
		return e
	}
	defer s.lockNow()()
	v, e := s.findVolume(rc, r.PathValue("volume_id"))
	if e != nil {
		return e
	}
	key := r.PathValue("key")
	val, ok := v.Metadata[key]
	if !ok {
		return errf(404, "Volume %s has no metadata with key %s.", v.ID, key)
	}
	writeJSON(w, http.StatusOK, map[string]any{"meta": map[string]string{key: val}})
	return nil
}

func (s *Sim) setVolumeMetadataItem(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	top, e := wrappedBody(r, rc, "meta")
	if e != nil {
		return e
	}
	if m, ok := top["meta"].(map[string]any); ok && len(m) == 0 {
		return invalidField("meta", m, "{} does not have enough properties")
	} else if ok && len(m) > 1 {
		return invalidField("meta", m, pyRepr(m)+" has too many properties")
	}
	item, e := checkMetadata("meta", top["meta"], false)
	if e != nil {
		return e
	}
	key := r.PathValue("key")
	if _, ok := item[key]; !ok {
		return errf(400, "Request body and URI mismatch")
	}
	defer s.lockNow()()
	v, e := s.findVolume(rc, r.PathValue("volume_id"))
	if e != nil {
		return e
	}
	if e := metadataMutable(v, "Updating"); e != nil {
		return e
	}
	v.Metadata[key] = item[key]
	writeJSON(w, http.StatusOK, map[string]any{"meta": item})
	return nil
}

func (s *Sim) deleteVolumeMetadataItem(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if e := checkProject(r, rc); e != nil {
		return e
	}
	defer s.lockNow()()
	v, e := s.findVolume(rc, r.PathValue("volume_id"))
	if e != nil {
		return e
	}
	key := r.PathValue("key")
	if _, ok := v.Metadata[key]; !ok {
		return errf(404, "Volume %s has no metadata with key %s.", v.ID, key)
	}
	if e := metadataMutable(v, "Deleting"); e != nil {
		return e
	}
	delete(v.Metadata, key)
	w.WriteHeader(http.StatusOK)
	return nil
}

// wrappedBody decodes a body of the form {"<key>": ...} as Cinder's
// schemas check it: JSON, the project in the path is the caller's, an
// object with exactly that key.
func wrappedBody(r *http.Request, rc *reqCtx, key string) (map[string]any, *apiError) {
	body, e := decodeJSONAny(r)
	if e != nil {
		return nil, e
	}
	if e := checkProject(r, rc); e != nil {
		return nil, e
	}
	if e := checkType("", body, "object"); e != nil {
		return nil, e
	}
	top := body.(map[string]any)
	if e := requireKey("", top, key); e != nil {
		return nil, e
	}
	if e := checkOnlyKeys("", top, key); e != nil {
		return nil, e
	}
	return top, nil
}
