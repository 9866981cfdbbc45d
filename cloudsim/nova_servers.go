package cloudsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// createReq is a validated POST /servers body.
type createReq struct {
	name, imageRef, flavorRef string
	keyName, az, userData     string
	description               *string
	adminPass                 string
	accessIPv4, accessIPv6    string
	metadata                  map[string]string
	tags                      []string
	networks                  any // "auto", "none", []map[string]string or nil
	bdms                      []bdmReq
	minCount, maxCount        int
	returnResv                bool
	configDrive               bool
	secGroups                 []string
	diskConfig                string
}

type bdmReq struct {
	sourceType, destType, uuid string
	bootIndex                  int // -1 = not bootable
	size                       int
	deleteOnTerm               bool
	tag, deviceName            string
}

// serverCreateKeys are the properties of the server object Nova's schema
// allows, with the microversion each appeared in (0 = always).
var serverCreateKeys = map[string][2]int{
	"name": {0, 0}, "imageRef": {0, 0}, "flavorRef": {0, 0}, "adminPass": {0, 0}, "metadata": {0, 0},
	"networks": {0, 0}, "OS-DCF:diskConfig": {0, 0}, "accessIPv4": {0, 0}, "accessIPv6": {0, 0},
	"key_name": {0, 0}, "user_data": {0, 0}, "availability_zone": {0, 0}, "block_device_mapping": {0, 0},
	"block_device_mapping_v2": {0, 0}, "security_groups": {0, 0}, "config_drive": {0, 0},
	"min_count": {0, 0}, "max_count": {0, 0}, "return_reservation_id": {0, 0}, "personality": {0, 0},
	"description": {2, 19}, "tags": {2, 52}, "trusted_image_certificates": {2, 63},
	"host": {2, 74}, "hypervisor_hostname": {2, 74}, "hostname": {2, 90},
}

func (s *Sim) parseCreate(r *http.Request, rc *reqCtx) (*createReq, *apiError) {
	body, e := decodeObject(r)
	if e != nil {
		return nil, e
	}
	sm, _, e := subObject(body, "server", "server", true)
	if e != nil {
		return nil, e
	}
	keys := make([]string, 0, len(sm))
	for k := range sm {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, ok := serverCreateKeys[k]
		if !ok || !rc.MV.AtLeast(v[0], v[1]) || (k == "personality" && rc.MV.AtLeast(2, 57)) {
			return nil, errAdditional("server", body["server"], k)
		}
	}
	cr := &createReq{minCount: 1, maxCount: 1}
	// name
	raw, ok := sm["name"]
	if !ok {
		return nil, errRequired("server", body["server"], "name")
	}
	if jsonKind(raw) != "string" || json.Unmarshal(raw, &cr.name) != nil {
		return nil, errType("name", raw, "string")
	}
	if len(cr.name) == 0 || len(cr.name) > 255 || strings.TrimSpace(cr.name) != cr.name {
		return nil, errf(400, "Invalid input for field/attribute name. Value: %s. '%s' does not match any of the regexes: '^(?! )[\\x20-\\x7E]*(?<! )$'", cr.name, cr.name)
	}
	// flavorRef: string or integer
	raw, ok = sm["flavorRef"]
	if !ok {
		return nil, errRequired("server", body["server"], "flavorRef")
	}
	switch jsonKind(raw) {
	case "string":
		_ = json.Unmarshal(raw, &cr.flavorRef)
	case "number":
		var n json.Number
		if json.Unmarshal(raw, &n) != nil {
			return nil, errType("flavorRef", raw, "string, integer")
		}
		cr.flavorRef = n.String()
	default:
		return nil, errType("flavorRef", raw, "string, integer")
	}
	if cr.flavorRef == "" {
		return nil, errf(400, "Invalid input for field/attribute flavorRef. Value: . '' is too short")
	}
	cr.flavorRef = lastPathSegment(cr.flavorRef)
	var str string
	if str, _, e = stringField(sm, "imageRef", false); e != nil {
		return nil, e
	}
	cr.imageRef = lastPathSegment(str)
	for _, f := range []struct {
		key string
		dst *string
	}{{"key_name", &cr.keyName}, {"availability_zone", &cr.az}, {"user_data", &cr.userData},
		{"adminPass", &cr.adminPass}, {"accessIPv4", &cr.accessIPv4}, {"accessIPv6", &cr.accessIPv6},
		{"OS-DCF:diskConfig", &cr.diskConfig}} {
		// Nova's schema types these as strings only: null is a 400.
		if *f.dst, _, e = stringField(sm, f.key, false); e != nil {
			return nil, e
		}
	}
	if cr.diskConfig != "" && cr.diskConfig != "AUTO" && cr.diskConfig != "MANUAL" {
		return nil, errf(400, "Invalid input for field/attribute OS-DCF:diskConfig. Value: %s. '%s' is not one of ['AUTO', 'MANUAL']", cr.diskConfig, cr.diskConfig)
	}
	if d, has, e := stringField(sm, "description", true); e != nil {
		return nil, e
	} else if has {
		if len(d) > 255 {
			return nil, errf(400, "Invalid input for field/attribute description. Value: %s. '%s' is too long", d, d)
		}
		cr.description = &d
	}
	if cr.metadata, e = stringMap(sm, "metadata"); e != nil {
		return nil, e
	}
	if raw, ok := sm["tags"]; ok {
		if cr.tags, e = parseTags(raw); e != nil {
			return nil, e
		}
	}
	if raw, ok := sm["config_drive"]; ok {
		switch jsonKind(raw) {
		case "boolean":
			_ = json.Unmarshal(raw, &cr.configDrive)
		case "string":
			var v string
			_ = json.Unmarshal(raw, &v)
			cr.configDrive = strings.EqualFold(v, "true") || v == "1"
		case "null":
		default:
			return nil, errType("config_drive", raw, "boolean, string, null")
		}
	}
	for _, f := range []struct {
		key string
		dst *int
	}{{"min_count", &cr.minCount}, {"max_count", &cr.maxCount}} {
		raw, ok := sm[f.key]
		if !ok {
			continue
		}
		n, ok := intValue(raw)
		if !ok || n < 1 {
			return nil, errf(400, "Invalid input for field/attribute %s. Value: %s. %s is less than the minimum of 1", f.key, pyStr(raw), pyRepr(raw))
		}
		*f.dst = n
	}
	if _, has := sm["max_count"]; !has {
		cr.maxCount = cr.minCount
	}
	if cr.minCount > cr.maxCount {
		return nil, errf(400, "min_count must be <= max_count")
	}
	if raw, ok := sm["return_reservation_id"]; ok {
		if jsonKind(raw) != "boolean" {
			return nil, errType("return_reservation_id", raw, "boolean")
		}
		_ = json.Unmarshal(raw, &cr.returnResv)
	}
	if raw, ok := sm["security_groups"]; ok {
		var groups []map[string]json.RawMessage
		if jsonKind(raw) != "array" || json.Unmarshal(raw, &groups) != nil {
			return nil, errType("security_groups", raw, "array")
		}
		for _, g := range groups {
			name, has, e := stringField(g, "name", false)
			if e != nil {
				return nil, e
			}
			if has && name != "" {
				cr.secGroups = append(cr.secGroups, name)
			}
		}
	}
	if cr.networks, e = parseNetworks(sm, body["server"], rc); e != nil {
		return nil, e
	}
	if raw, ok := sm["block_device_mapping_v2"]; ok {
		if cr.bdms, e = parseBDMs(raw); e != nil {
			return nil, e
		}
	}
	return cr, nil
}

func lastPathSegment(ref string) string {
	if i := strings.LastIndex(ref, "/"); i >= 0 && strings.Contains(ref, "://") {
		return ref[i+1:]
	}
	return ref
}

func intValue(raw json.RawMessage) (int, bool) {
	switch jsonKind(raw) {
	case "number":
		var f float64
		if json.Unmarshal(raw, &f) != nil || f != float64(int(f)) || f > 1e9 || f < -1e9 {
			return 0, false
		}
		return int(f), true
	case "string":
		var v string
		_ = json.Unmarshal(raw, &v)
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n > 1e9 || n < -1e9 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

func parseTags(raw json.RawMessage) ([]string, *apiError) {
	var tags []json.RawMessage
	if jsonKind(raw) != "array" || json.Unmarshal(raw, &tags) != nil {
		return nil, errType("tags", raw, "array")
	}
	if len(tags) > 50 {
		return nil, errf(400, "Invalid input for field/attribute tags. Value: %s. %s is too long", pyStr(raw), pyRepr(raw))
	}
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		var v string
		if jsonKind(t) != "string" || json.Unmarshal(t, &v) != nil {
			return nil, errType("tags", t, "string")
		}
		if v == "" || len(v) > 60 || strings.ContainsAny(v, "/,") {
			return nil, errf(400, "Invalid input for field/attribute tags. Value: %s. '%s' does not match '^[^,/]*$'", v, v)
		}
		if !hasString(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

// parseNetworks applies Nova's networks rules: optional list before 2.37;
// required from 2.37, as "auto", "none" or a list of {uuid|port|fixed_ip|tag}.
// serverRaw is the server object as sent, for the messages.
func parseNetworks(sm map[string]json.RawMessage, serverRaw json.RawMessage, rc *reqCtx) (any, *apiError) {
	raw, ok := sm["networks"]
	if !ok {
		if rc.MV.AtLeast(2, 37) {
			return nil, errRequired("server", serverRaw, "networks")
		}
		return "auto", nil
	}
	switch jsonKind(raw) {
	case "string":
		var v string
		_ = json.Unmarshal(raw, &v)
		if rc.MV.AtLeast(2, 37) && (v == "auto" || v == "none") {
			return v, nil
		}
		if rc.MV.AtLeast(2, 37) {
			return nil, errf(400, "Invalid input for field/attribute networks. Value: %s. '%s' is not one of ['none', 'auto']", v, v)
		}
		return nil, errType("networks", raw, "array")
	case "array":
	default:
		return nil, errType("networks", raw, "array")
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return nil, errf(400, "Malformed request body")
	}
	list := make([]map[string]string, 0, len(items))
	for _, it := range items {
		if jsonKind(it) != "object" {
			return nil, errType("networks", it, "object")
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(it, &m) != nil {
			return nil, errf(400, "Malformed request body")
		}
		n := map[string]string{}
		for k, v := range m {
			switch k {
			case "uuid", "port", "fixed_ip", "tag":
			default:
				return nil, errAdditional("networks", it, k)
			}
			var sv string
			if jsonKind(v) == "null" && k != "tag" {
				continue
			}
			if jsonKind(v) != "string" || json.Unmarshal(v, &sv) != nil {
				return nil, errType(k, v, "string")
			}
			if (k == "uuid" || k == "port") && !validUUID(sv) {
				if k == "uuid" && rc.MV.AtLeast(2, 37) || k == "port" {
					return nil, errNotUUID(k, sv)
				}
				return nil, errf(400, "Bad networks format: network uuid is not in proper format (%s)", sv)
			}
			n[k] = sv
		}
		if n["uuid"] == "" && n["port"] == "" {
			return nil, errf(400, "Bad network format: missing 'uuid'")
		}
		list = append(list, n)
	}
	return list, nil
}

func parseBDMs(raw json.RawMessage) ([]bdmReq, *apiError) {
	var items []json.RawMessage
	if jsonKind(raw) != "array" || json.Unmarshal(raw, &items) != nil {
		return nil, errType("block_device_mapping_v2", raw, "array")
	}
	var out []bdmReq
	for _, it := range items {
		if jsonKind(it) != "object" {
			return nil, errType("block_device_mapping_v2", it, "object")
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(it, &m) != nil {
			return nil, errf(400, "Malformed request body")
		}
		b := bdmReq{bootIndex: -1, sourceType: "blank", destType: "local"}
		var e *apiError
		var has bool
		if b.sourceType, has, e = stringField(m, "source_type", false); e != nil {
			return nil, e
		} else if !has {
			b.sourceType = "blank"
		}
		if !hasString([]string{"volume", "image", "snapshot", "blank"}, b.sourceType) {
			return nil, errf(400, "Invalid input for field/attribute source_type. Value: %s. '%s' is not one of ['volume', 'image', 'snapshot', 'blank']", b.sourceType, b.sourceType)
		}
		if b.destType, has, e = stringField(m, "destination_type", true); e != nil {
			return nil, e
		} else if !has {
			b.destType = "volume"
			if b.sourceType == "blank" || b.sourceType == "image" {
				b.destType = "local"
			}
		}
		if !hasString([]string{"local", "volume"}, b.destType) {
			return nil, errf(400, "Invalid input for field/attribute destination_type. Value: %s. '%s' is not one of ['local', 'volume']", b.destType, b.destType)
		}
		if b.uuid, _, e = stringField(m, "uuid", true); e != nil {
			return nil, e
		}
		if b.tag, _, e = stringField(m, "tag", true); e != nil {
			return nil, e
		}
		if b.deviceName, _, e = stringField(m, "device_name", true); e != nil {
			return nil, e
		}
		if v, ok := m["boot_index"]; ok && jsonKind(v) != "null" {
			n, ok := intValue(v)
			if !ok {
				return nil, errType("boot_index", v, "integer, string, null")
			}
			b.bootIndex = n
		}
		if v, ok := m["volume_size"]; ok && jsonKind(v) != "null" {
			n, ok := intValue(v)
			if !ok || n < 0 {
				return nil, errType("volume_size", v, "integer, string, null")
			}
			b.size = n
		}
		if v, ok := m["delete_on_termination"]; ok {
			switch jsonKind(v) {
			case "boolean":
				_ = json.Unmarshal(v, &b.deleteOnTerm)
			case "string":
				var sv string
				_ = json.Unmarshal(v, &sv)
				b.deleteOnTerm = strings.EqualFold(sv, "true") || sv == "1"
			case "null":
			default:
				return nil, errType("delete_on_termination", v, "boolean, string")
			}
		}
		if b.sourceType != "blank" && b.uuid == "" {
			return nil, errf(400, "Block Device Mapping is Invalid: Missing uuid for source_type %s.", b.sourceType)
		}
		out = append(out, b)
	}
	return out, nil
}

// bootVolume is a volume the build will attach (or create and attach).
type bootVolume struct {
	sv      *serverVolume
	vol     *volume // existing volume (source_type volume); nil when the build creates it
	imageID string  // source image of a volume the build creates
	size    int
}

func (s *Sim) createServer(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	cr, e := s.parseCreate(r, rc)
	if e != nil {
		return e
	}
	defer s.lockNow()()
	now := s.clock.Now()
	fl := s.flavorByID(cr.flavorRef)
	if fl == nil {
		return errf(400, "Flavor %s could not be found.", cr.flavorRef)
	}
	if cr.az != "" && cr.az != "nova" {
		return errf(400, "The requested availability zone is not available")
	}
	volumeBacked := false
	for _, b := range cr.bdms {
		if b.bootIndex == 0 {
			if b.destType == "volume" {
				volumeBacked = true
			} else if b.sourceType == "image" {
				cr.imageRef = b.uuid
			}
		}
	}
	var boot []bootVolume
	var img *image
	if volumeBacked {
		cr.imageRef = ""
	} else {
		if cr.imageRef == "" {
			return errf(400, "Missing imageRef attribute")
		}
		if !validUUID(cr.imageRef) {
			return errf(400, "Invalid imageRef provided.")
		}
		if img = s.visibleImage(rc, cr.imageRef); img == nil {
			return errf(400, "Can not find requested image")
		}
		if img.Status != "active" {
			return errf(400, "Image %s is not active.", cr.imageRef)
		}
		if fl.Disk == 0 && !rc.isAdmin() {
			return errf(403, "Only volume-backed servers are allowed for flavors with zero disk.")
		}
		if fl.Disk > 0 && img.MinDisk > fl.Disk {
			return errf(400, "Flavor's disk is too small for requested image. Flavor disk is %d bytes, image is %d bytes.", int64(fl.Disk)<<30, int64(img.MinDisk)<<30)
		}
	}
	devices := map[string]bool{}
	for _, b := range cr.bdms {
		if b.destType != "volume" {
			continue
		}
		bv := bootVolume{size: b.size, sv: &serverVolume{DeleteOnTerm: b.deleteOnTerm, Tag: b.tag, Boot: b.bootIndex == 0}}
		switch b.sourceType {
		case "volume":
			v := s.liveVolume(b.uuid)
			if v == nil || (!rc.isAdmin() && v.ProjectID != rc.projectID()) {
				return errf(400, "Block Device Mapping is Invalid: failed to get volume %s.", b.uuid)
			}
			if v.Status != "available" {
				return errf(400, "Invalid volume: Volume %s status must be available or downloading to reserve, but the current status is %s.", v.ID, v.Status)
			}
			if cr.maxCount > 1 {
				return errf(400, "Cannot attach one or more volumes to multiple instances")
			}
			bv.vol = v
			bv.sv.VolumeID = v.ID
		case "image":
			im := s.visibleImage(rc, b.uuid)
			if im == nil {
				return errf(400, "Block Device Mapping is Invalid: failed to get image %s.", b.uuid)
			}
			if im.Status != "active" {
				return errf(400, "Image %s is not active.", b.uuid)
			}
			if b.size <= 0 {
				return errf(400, "Images with destination_type 'volume' need to have a non-zero size specified")
			}
			bv.imageID = im.ID
		case "snapshot":
			return errf(400, "Block Device Mapping is Invalid: failed to get snapshot %s.", b.uuid)
		case "blank":
			if b.size <= 0 {
				return errf(400, "Blank volumes (source: 'blank', dest: 'volume') need to have non-zero size")
			}
		}
		dev := b.deviceName
		if bv.sv.Boot {
			dev = "/dev/vda"
		}
		if dev == "" || devices[dev] {
			dev = ""
		}
		bv.sv.Device = dev
		devices[dev] = true
		boot = append(boot, bv)
	}
	// Quota: as Nova, min_count must fit; max_count is trimmed to what fits.
	used, quota := s.instances[rc.projectID()], s.cfg.ServerQuota
	if used+cr.minCount > quota {
		return errf(403, "Quota exceeded for instances: Requested %d, but already used %d of %d instances", cr.minCount, used, quota)
	}
	cr.maxCount = min(cr.maxCount, quota-used)
	// Scripted request-level faults act before anything is created.
	outcomes := make([]outcome, cr.maxCount)
	for i := range outcomes {
		outcomes[i] = s.decide(OpServerCreate, instanceName(cr, i))
	}
	if e := scriptedAPIFault(outcomes[0], rc); e != nil {
		return e
	}
	resv := fmt.Sprintf("r-%08x", s.rng.Uint32())
	var first *server
	for i := 0; i < cr.maxCount; i++ {
		sv := s.newServerLocked(rc, cr, fl, resv, i, now)
		var vols []bootVolume
		for _, bv := range boot {
			c := bv
			c.sv = &serverVolume{VolumeID: bv.sv.VolumeID, Device: bv.sv.Device, Tag: bv.sv.Tag, DeleteOnTerm: bv.sv.DeleteOnTerm,
				Boot: bv.sv.Boot, AttachmentID: newUUID(), BDMUUID: newUUID()}
			if c.sv.Device == "" {
				c.sv.Device = nextDevice(sv, vols)
			}
			vols = append(vols, c)
			sv.Volumes = append(sv.Volumes, c.sv)
			if c.vol != nil {
				// Nova's API reserves the volume (attachment_create without a connector).
				s.setVolumeStatus(c.vol, "reserved", now)
				c.vol.Attachments = append(c.vol.Attachments, &volAttachment{ID: c.sv.AttachmentID, ServerID: sv.ID,
					Device: c.sv.Device, Status: "reserved"})
			}
		}
		if s.timing.BuildRequests {
			s.enterBuildRequest(sv)
		}
		a := s.recordAction(sv, rc, "create", now)
		s.startBuild(sv, a, outcomes[i], vols)
		if first == nil {
			first = sv
		}
	}
	if outcomes[0].kind == FaultLoseResponse {
		rc.LoseResponse()
	}
	if cr.returnResv {
		writeJSON(w, 202, map[string]any{"reservation_id": resv})
		return nil
	}
	base := s.linkBase(r)
	w.Header().Set("Location", base+computePrefix+"/servers/"+first.ID)
	groups := []any{}
	for _, g := range first.nova.SecurityGroups {
		groups = append(groups, map[string]any{"name": g})
	}
	diskConfig := cr.diskConfig
	if diskConfig == "" {
		diskConfig = "MANUAL"
	}
	body := map[string]any{"id": first.ID, "links": serverLinks(base, first.ID), "OS-DCF:diskConfig": diskConfig,
		"security_groups": groups, "adminPass": first.nova.adminPass()}
	writeJSON(w, 202, map[string]any{"server": body})
	return nil
}

func (n *novaServer) adminPass() string { return n.pass }

func instanceName(cr *createReq, i int) string {
	if cr.maxCount > 1 {
		return fmt.Sprintf("%s-%d", cr.name, i+1)
	}
	return cr.name
}

// visibleImage returns an image the caller may boot from.
func (s *Sim) visibleImage(rc *reqCtx, id string) *image {
	im := s.liveImage(id)
	if im == nil {
		return nil
	}
	if im.Visibility == "private" && im.Owner != rc.projectID() && !rc.isAdmin() {
		return nil
	}
	return im
}

const passChars = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

func (s *Sim) newServerLocked(rc *reqCtx, cr *createReq, fl *flavor, resv string, i int, now time.Time) *server {
	sv := &server{
		resBase: resBase{seq: s.nextSeq()}, ID: newUUID(), Name: instanceName(cr, i),
		ProjectID: rc.projectID(), UserID: rc.userID(), ImageRef: cr.imageRef, FlavorID: fl.ID,
		KeyName: cr.keyName, VMState: vmBuilding, TaskState: "scheduling",
		Created: now.UTC().Truncate(time.Second), Metadata: cr.metadata, Tags: cr.tags, Networks: cr.networks,
		UserData: cr.userData,
	}
	if cr.description != nil {
		sv.Description = *cr.description
	}
	if sv.Metadata == nil {
		sv.Metadata = map[string]string{}
	}
	if sv.Tags == nil {
		sv.Tags = []string{}
	}
	pass := cr.adminPass
	if pass == "" {
		b := make([]byte, 12)
		for j := range b {
			b[j] = passChars[s.rng.IntN(len(passChars))]
		}
		pass = string(b)
	}
	groups := cr.secGroups
	if len(groups) == 0 {
		groups = []string{"default"}
	}
	sv.nova = &novaServer{
		SecurityGroups: groups, AccessIPv4: cr.accessIPv4, AccessIPv6: cr.accessIPv6, ConfigDrive: cr.configDrive,
		ReservationID: resv, LaunchIndex: i, Hostname: hostnameFor(sv.Name), NetworksNone: cr.networks == "none",
		pass: pass,
	}
	s.servers[sv.ID] = sv
	s.indexLive(sv)
	s.instances[sv.ProjectID]++
	s.touchServer(sv, now)
	return sv
}

func hostnameFor(name string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(name) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
			b.WriteRune(c)
		case c == ' ', c == '_', c == '.':
			b.WriteByte('-')
		}
	}
	h := strings.Trim(b.String(), "-")
	if len(h) > 63 {
		h = h[:63]
	}
	if h == "" {
		h = "server"
	}
	return h
}

// startBuild walks a new server through Nova's build:
// BUILD/scheduling → networking → block_device_mapping → spawning → ACTIVE.
func (s *Sim) startBuild(sv *server, a *instanceAction, o outcome, vols []bootVolume) {
	t := s.timing
	var compute *instanceEvent
	steps := []step{{D: t.BuildSchedule, Fn: func(now time.Time) {
		if o.kind == FaultError {
			// Real Nova records a conductor event only when it buries the
			// instance in cell0. The event ends Success here, as realstack's
			// failed builds leave the create action (see
			// conformance/DIFFERENCES.md).
			conductor := s.beginEvent(sv, a, "conductor_schedule_and_build_instances", sv.Created)
			s.endEvent(a, conductor, true, "", now)
			msg := o.message
			if msg == "" {
				msg = defaultNoValidHostFault
			}
			s.failServer(sv, msg, "Traceback (most recent call last):\n  File \"/usr/lib/python3/dist-packages/nova/conductor/manager.py\", line 1654, in schedule_and_build_instances\n    host_lists = self._schedule_instances(context, request_specs[0],\nnova.exception.NoValidHost: "+msg+"\n", now)
			for _, bv := range vols {
				if bv.vol != nil && !bv.vol.Deleted {
					s.detachVolumeRecord(bv.vol, sv.ID, now)
				}
			}
			kept := sv.Volumes[:0]
			for _, v := range sv.Volumes {
				if v.VolumeID != "" {
					kept = append(kept, v)
				}
			}
			sv.Volumes = kept
			return
		}
		sv.Host = computeHosts[s.rng.IntN(len(computeHosts))]
		sv.AZ = "nova"
		compute = s.beginEvent(sv, a, "compute__do_build_and_run_instance", now)
		s.setTask(sv, "networking", now)
	}}}
	if o.kind != FaultError {
		steps = append(steps, step{D: t.BuildNetworking, Fn: func(now time.Time) {
			if !sv.nova.NetworksNone {
				sv.nova.IP = fmt.Sprintf("10.0.%d.%d", (sv.seq/250)%256, sv.seq%250+2)
				sv.nova.MAC = fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", byte(sv.seq>>16), byte(sv.seq>>8), byte(sv.seq))
			}
			for i := range vols {
				bv := &vols[i]
				if bv.vol == nil {
					name := ""
					bv.vol = s.newVolumeLocked(sv.ProjectID, sv.UserID, name, bv.size, bv.imageID, nil, now)
					bv.sv.VolumeID = bv.vol.ID
					bv.vol.Attachments = append(bv.vol.Attachments, &volAttachment{ID: bv.sv.AttachmentID, ServerID: sv.ID,
						Device: bv.sv.Device, HostName: sv.Host, Status: "reserved"})
				} else {
					s.setVolumeStatus(bv.vol, "attaching", now)
					setAttachStatus(bv.vol, sv.ID, "attaching", sv.Host)
				}
			}
			s.setTask(sv, "block_device_mapping", now)
		}})
		half := t.BuildBlockDevice / 2
		steps = append(steps, step{D: half, Fn: func(now time.Time) {
			for _, bv := range vols {
				if bv.imageID != "" && bv.vol.Status == "creating" {
					s.setVolumeStatus(bv.vol, "downloading", now)
				}
			}
		}}, step{D: t.BuildBlockDevice - half, Fn: func(now time.Time) {
			for _, bv := range vols {
				if bv.vol.Deleted {
					continue
				}
				s.setVolumeStatus(bv.vol, "in-use", now)
				setAttachStatus(bv.vol, sv.ID, "attached", sv.Host)
				for _, at := range bv.vol.Attachments {
					if at.ServerID == sv.ID {
						at.AttachedAt = now.UTC()
					}
				}
			}
			s.setTask(sv, "spawning", now)
		}})
		if o.kind == FaultAbort {
			steps = append(steps, step{D: t.BuildSpawn, Fn: func(now time.Time) { s.abortBuild(sv, a, compute, o.message, now) }})
		} else if o.kind != FaultHang {
			steps = append(steps, step{D: t.BuildSpawn, Fn: func(now time.Time) {
				sv.VMState, sv.TaskState, sv.PowerState = vmActive, "", 1
				sv.LaunchedAt = now.UTC()
				s.endEvent(a, compute, true, "", now)
				s.touchServer(sv, now)
			}})
		}
	}
	if !sv.buildReq {
		s.walk(&sv.resBase, steps...)
		return
	}
	// The scheduler runs while the server is a build request: a failure
	// buries it in cell0 (in ERROR) at the end of the phase; otherwise the
	// conductor hands it to its cell and the compute host takes it from
	// there (BuildSchedule is the RPC and the claim).
	sv.release = func(now time.Time) {
		if !sv.buildReq {
			return
		}
		s.leaveBuildRequest(sv)
		if o.kind == FaultError {
			steps[0].Fn(now)
			return
		}
		s.walk(&sv.resBase, steps...)
	}
	s.walk(&sv.resBase, step{D: t.BuildRequestPhase, Fn: func(now time.Time) { sv.release(now) }})
}

// defaultAbortReason is the reason of a FaultAbort without a message, one
// real Nova gives when Neutron cannot bind a port.
const defaultAbortReason = "Failed to allocate the network(s), not rescheduling."

// abortBuild is the compute host giving up a build (BuildAbortException):
// Nova's event wrapper has handled the exception, so the event ends
// Success; the networks and volumes are cleaned up, host and node nulled,
// and the server goes to ERROR with the fault. Callers hold s.mu.
func (s *Sim) abortBuild(sv *server, a *instanceAction, compute *instanceEvent, reason string, now time.Time) {
	if reason == "" {
		reason = defaultAbortReason
	}
	msg := fmt.Sprintf("Build of instance %s aborted: %s", sv.ID, reason)
	s.endEvent(a, compute, true, "", now)
	sv.nova.IP, sv.nova.MAC = "", ""
	kept := sv.Volumes[:0]
	for _, bv := range sv.Volumes {
		v := s.liveVolume(bv.VolumeID)
		if v != nil {
			s.detachVolumeRecord(v, sv.ID, now)
		}
		if !bv.DeleteOnTerm {
			kept = append(kept, bv) // Nova keeps the BDM, detached
			continue
		}
		if v != nil && len(v.Attachments) == 0 {
			s.setVolumeStatus(v, "deleting", now)
			s.walk(&v.resBase, step{D: s.timing.VolumeDelete, Fn: func(now time.Time) { s.removeVolumeLocked(v) }})
		}
	}
	sv.Volumes = kept
	// Seen on a Zed Nova: the availability zone reads "" again too.
	sv.Host, sv.AZ, sv.PowerState = "", "", 0
	s.failServer(sv, msg, "Traceback (most recent call last):\n  File \"/usr/lib/python3/dist-packages/nova/compute/manager.py\", line 2451, in _do_build_and_run_instance\n    self._build_and_run_instance(context, instance, image,\nnova.exception.BuildAbortException: "+msg+"\n", now)
}

// setTask sets task_state and stamps the change. Callers hold s.mu.
func (s *Sim) setTask(sv *server, task string, now time.Time) {
	sv.TaskState = task
	s.touchServer(sv, now)
}

// failServer puts sv into ERROR with a fault. Callers hold s.mu.
func (s *Sim) failServer(sv *server, msg, details string, now time.Time) {
	sv.VMState, sv.TaskState = vmError, ""
	if sv.Host == "" {
		sv.PowerState = 0
	}
	sv.Fault = &fault{Code: 500, Message: msg, Details: details, Created: now.UTC()}
	s.touchServer(sv, now)
}

func serverLinks(base, id string) []any {
	return []any{
		map[string]any{"rel": "self", "href": base + computePrefix + "/servers/" + id},
		map[string]any{"rel": "bookmark", "href": base + "/compute/servers/" + id},
	}
}

var progressStatuses = map[string]bool{"ACTIVE": true, "BUILD": true, "REBUILD": true, "RESIZE": true, "VERIFY_RESIZE": true, "MIGRATING": true}

// serverView renders sv as Nova's show/detail view for the caller's
// microversion and role. Callers hold s.mu.
func (s *Sim) serverView(base string, rc *reqCtx, sv *server) map[string]any {
	status := serverStatus(sv.VMState, sv.TaskState)
	admin := rc.isAdmin()
	v := map[string]any{
		"id": sv.ID, "name": sv.Name, "status": status, "tenant_id": sv.ProjectID, "user_id": sv.UserID,
		"metadata": cloneMap(sv.Metadata), "hostId": hostID(sv.ProjectID, sv.Host),
		"created": fmtNova(sv.Created), "updated": fmtNova(updatedOrNow(sv.Updated, s.clock.Now())),
		"accessIPv4": sv.nova.AccessIPv4, "accessIPv6": sv.nova.AccessIPv6,
		"links": serverLinks(base, sv.ID), "OS-DCF:diskConfig": "MANUAL",
		"OS-EXT-AZ:availability_zone": sv.AZ, "key_name": nil, "config_drive": "",
		"OS-SRV-USG:launched_at": nil, "OS-SRV-USG:terminated_at": nil,
		"OS-EXT-STS:vm_state": sv.VMState, "OS-EXT-STS:task_state": nil, "OS-EXT-STS:power_state": sv.PowerState,
	}
	if sv.Metadata == nil {
		v["metadata"] = map[string]string{}
	}
	if progressStatuses[status] {
		v["progress"] = sv.Progress
	}
	if sv.KeyName != "" {
		v["key_name"] = sv.KeyName
	}
	if sv.nova.ConfigDrive {
		v["config_drive"] = "True"
	}
	if !sv.LaunchedAt.IsZero() {
		v["OS-SRV-USG:launched_at"] = fmtNoZ(sv.LaunchedAt)
	}
	if !sv.nova.TerminatedAt.IsZero() {
		v["OS-SRV-USG:terminated_at"] = fmtNoZ(sv.nova.TerminatedAt)
	}
	if sv.TaskState != "" {
		v["OS-EXT-STS:task_state"] = sv.TaskState
	}
	addresses := map[string]any{}
	if sv.nova.IP != "" && !sv.Deleted {
		addresses["private"] = []any{map[string]any{"version": 4, "addr": sv.nova.IP,
			"OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": sv.nova.MAC}}
	}
	v["addresses"] = addresses
	groups := make([]any, 0, len(sv.nova.SecurityGroups))
	for _, g := range sv.nova.SecurityGroups {
		groups = append(groups, map[string]any{"name": g})
	}
	// Nova reads security groups from the server's Neutron ports: a
	// server booted with networks "none", not yet networked or deleted has
	// none, and then the key is absent.
	if sv.nova.IP != "" && !sv.Deleted {
		v["security_groups"] = groups
	}
	vols := []any{}
	for _, bv := range sv.Volumes {
		if bv.VolumeID == "" {
			continue
		}
		e := map[string]any{"id": bv.VolumeID}
		if rc.MV.AtLeast(2, 3) {
			e["delete_on_termination"] = bv.DeleteOnTerm
		}
		vols = append(vols, e)
	}
	v["os-extended-volumes:volumes_attached"] = vols
	if sv.ImageRef == "" {
		v["image"] = ""
	} else {
		im := map[string]any{"id": sv.ImageRef, "links": []any{map[string]any{"rel": "bookmark", "href": base + "/compute/images/" + sv.ImageRef}}}
		if rc.MV.AtLeast(2, 98) {
			props := map[string]string{}
			if img := s.liveImage(sv.ImageRef); img != nil {
				props = cloneMap(img.Properties)
			}
			im["properties"] = props
		}
		v["image"] = im
	}
	if fl := s.flavorByID(sv.FlavorID); fl != nil {
		if rc.MV.AtLeast(2, 47) {
			v["flavor"] = map[string]any{"vcpus": fl.VCPUs, "ram": fl.RAM, "disk": fl.Disk, "ephemeral": fl.Ephemeral,
				"swap": fl.Swap, "original_name": fl.Name, "extra_specs": cloneMap(fl.ExtraSpecs)}
		} else {
			v["flavor"] = map[string]any{"id": fl.ID, "links": []any{map[string]any{"rel": "bookmark", "href": base + "/compute/flavors/" + fl.ID}}}
		}
	}
	if rc.MV.AtLeast(2, 9) {
		v["locked"] = sv.Locked
	}
	if rc.MV.AtLeast(2, 73) {
		v["locked_reason"] = nil
	}
	if rc.MV.AtLeast(2, 19) {
		v["description"] = nil
		if sv.Description != "" {
			v["description"] = sv.Description
		}
	}
	if rc.MV.AtLeast(2, 26) {
		v["tags"] = append([]string{}, sv.Tags...)
	}
	if rc.MV.AtLeast(2, 63) {
		v["trusted_image_certificates"] = nil
	}
	if rc.MV.AtLeast(2, 96) {
		v["pinned_availability_zone"] = nil
	}
	if rc.MV.AtLeast(2, 100) {
		v["scheduler_hints"] = map[string]any{}
	}
	if admin {
		v["OS-EXT-SRV-ATTR:host"] = nilIfEmpty(sv.Host)
		v["OS-EXT-SRV-ATTR:hypervisor_hostname"] = nilIfEmpty(sv.Host)
		v["OS-EXT-SRV-ATTR:instance_name"] = fmt.Sprintf("instance-%08x", sv.seq)
		if rc.MV.AtLeast(2, 3) {
			v["OS-EXT-SRV-ATTR:reservation_id"] = sv.nova.ReservationID
			v["OS-EXT-SRV-ATTR:launch_index"] = sv.nova.LaunchIndex
			v["OS-EXT-SRV-ATTR:hostname"] = sv.nova.Hostname
			v["OS-EXT-SRV-ATTR:kernel_id"] = ""
			v["OS-EXT-SRV-ATTR:ramdisk_id"] = ""
			v["OS-EXT-SRV-ATTR:root_device_name"] = "/dev/vda"
			v["OS-EXT-SRV-ATTR:user_data"] = nilIfEmpty(sv.UserData)
		}
		if rc.MV.AtLeast(2, 16) {
			v["host_status"] = ""
			if sv.Host != "" {
				v["host_status"] = "UP"
			}
		}
	} else if rc.MV.AtLeast(2, 90) {
		// 2.90 shows the hostname to everyone.
		v["OS-EXT-SRV-ATTR:hostname"] = sv.nova.Hostname
	}
	if sv.Fault != nil && (status == "ERROR" || status == "DELETED") {
		f := map[string]any{"code": sv.Fault.Code, "created": fmtNova(sv.Fault.Created), "message": sv.Fault.Message}
		if admin || sv.Fault.Code != 500 {
			f["details"] = sv.Fault.Details
		}
		v["fault"] = f
	}
	return v
}

// updatedOrNow is what Nova shows as "updated": nova.utils.isotime of the
// row's updated_at, which is the current time while updated_at is NULL (a
// build request, or an instance its compute host has not saved yet).
func updatedOrNow(updated, now time.Time) time.Time {
	if updated.IsZero() {
		return now
	}
	return updated
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (s *Sim) showServer(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	defer s.lockNow()()
	sv, e := s.findServer(rc, r.PathValue("id"), false)
	if e != nil {
		return e
	}
	writeJSON(w, 200, map[string]any{"server": s.serverShowView(s.linkBase(r), rc, sv)})
	return nil
}

// serverShowView is the view of show, update and rebuild: from 2.71 it
// has server_groups, which list and detail entries lack.
func (s *Sim) serverShowView(base string, rc *reqCtx, sv *server) map[string]any {
	v := s.serverView(base, rc, sv)
	if rc.MV.AtLeast(2, 71) {
		v["server_groups"] = []any{}
	}
	return v
}

func (s *Sim) updateServer(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	body, e := decodeObject(r)
	if e != nil {
		return e
	}
	sm, _, e := subObject(body, "server", "server", true)
	if e != nil {
		return e
	}
	for k := range sm {
		switch k {
		case "name", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig":
		case "description":
			if !rc.MV.AtLeast(2, 19) {
				return errAdditional("server", body["server"], k)
			}
		default:
			return errAdditional("server", body["server"], k)
		}
	}
	name, hasName, e := stringField(sm, "name", false)
	if e != nil {
		return e
	}
	if hasName && (name == "" || len(name) > 255) {
		return errf(400, "Invalid input for field/attribute name. Value: %s. '%s' is too short", name, name)
	}
	desc, hasDesc, e := stringField(sm, "description", true)
	if e != nil {
		return e
	}
	ip4, hasIP4, e := stringField(sm, "accessIPv4", true)
	if e != nil {
		return e
	}
	ip6, hasIP6, e := stringField(sm, "accessIPv6", true)
	if e != nil {
		return e
	}
	defer s.lockNow()()
	sv, e := s.findServer(rc, r.PathValue("id"), false)
	if e != nil {
		return e
	}
	if hasName {
		sv.Name = name
	}
	if _, ok := sm["description"]; ok {
		sv.Description = ""
		if hasDesc {
			sv.Description = desc
		}
	}
	if hasIP4 {
		sv.nova.AccessIPv4 = ip4
	}
	if hasIP6 {
		sv.nova.AccessIPv6 = ip6
	}
	s.touchServer(sv, s.clock.Now())
	writeJSON(w, 200, map[string]any{"server": s.serverShowView(s.linkBase(r), rc, sv)})
	return nil
}

// ---- list ----

var validStatuses = map[string]bool{"ACTIVE": true, "BUILD": true, "DELETED": true, "ERROR": true, "HARD_REBOOT": true,
	"MIGRATING": true, "PASSWORD": true, "PAUSED": true, "REBOOT": true, "REBUILD": true, "RESCUE": true, "RESIZE": true,
	"REVERT_RESIZE": true, "SHELVED": true, "SHELVED_OFFLOADED": true, "SHUTOFF": true, "SOFT_DELETED": true,
	"SUSPENDED": true, "VERIFY_RESIZE": true, "UNKNOWN": true}

// serverListParams are the query parameters Nova's list schema knows;
// from 2.75 any other one gets 400.
var serverListParams = map[string]bool{"changes-since": true, "changes-before": true, "status": true, "name": true,
	"limit": true, "marker": true, "image": true, "flavor": true, "ip": true, "ip6": true, "host": true,
	"all_tenants": true, "tenant_id": true, "project_id": true, "user_id": true, "tags": true, "tags-any": true,
	"not-tags": true, "not-tags-any": true, "availability_zone": true, "sort_key": true, "sort_dir": true,
	"deleted": true, "reservation_id": true, "vm_state": true, "task_state": true, "power_state": true,
	"key_name": true, "config_drive": true, "access_ip_v4": true, "access_ip_v6": true, "created_at": true,
	"launched_at": true, "terminated_at": true, "locked": true, "description": true, "uuid": true,
	"node": true, "hostname": true, "progress": true, "launch_index": true, "kernel_id": true, "ramdisk_id": true,
	"display_name": true, "display_description": true, "locked_by": true, "image_ref": true, "root_device_name": true,
	"user_data": true, "pinned_availability_zone": true, "soft_deleted": true}

// parseNovaTime accepts the ISO 8601 forms oslo's parse_isotime does;
// times without a zone are UTC.
func parseNovaTime(v string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999",
		"2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04Z07:00", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

func truthy(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "", "1", "t", "true", "on", "y", "yes":
		return true, true
	case "0", "f", "false", "off", "n", "no":
		return false, true
	}
	return false, false
}

func (s *Sim) listServers(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	detail := strings.HasSuffix(r.URL.Path, "/detail")
	q := r.URL.Query()
	if rc.MV.AtLeast(2, 75) {
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !serverListParams[k] {
				return errf(400, "Invalid input for query parameters %s. Value: %s. Additional properties are not allowed ('%s' was unexpected)", k, q.Get(k), k)
			}
		}
	}
	limit, e := s.limitParam(q.Get("limit"), q.Has("limit"))
	if e != nil {
		return e
	}
	var since, before time.Time
	if v := q.Get("changes-since"); q.Has("changes-since") {
		t, ok := parseNovaTime(v)
		if !ok {
			return errf(400, "Invalid input for query parameters changes-since. Value: %s. '%s' is not a 'date-time'", v, v)
		}
		since = t
	}
	if v := q.Get("changes-before"); q.Has("changes-before") && rc.MV.AtLeast(2, 66) {
		t, ok := parseNovaTime(v)
		if !ok {
			return errf(400, "Invalid input for query parameters changes-before. Value: %s. '%s' is not a 'date-time'", v, v)
		}
		if !since.IsZero() && t.Before(since) {
			return errf(400, "The value of changes-since must be less than or equal to changes-before.")
		}
		before = t
	}
	changes := !since.IsZero() || !before.IsZero()
	status := strings.ToUpper(q.Get("status"))
	noMatch := false
	if status != "" && !validStatuses[status] {
		if rc.MV.AtLeast(2, 38) {
			return errf(400, "Invalid status value")
		}
		noMatch = true
	}
	wantDeleted := false
	if status == "DELETED" && !changes {
		if !rc.isAdmin() {
			return errf(403, "Only administrators may list deleted instances")
		}
		wantDeleted = true
	}
	if v, ok := q["deleted"]; ok && rc.isAdmin() {
		if b, _ := truthy(v[0]); b {
			wantDeleted = true
		}
	}
	var nameRE *regexp.Regexp
	if n := q.Get("name"); n != "" {
		re, err := regexp.Compile(n)
		if err != nil {
			re = regexp.MustCompile(regexp.QuoteMeta(n))
		}
		nameRE = re
	}
	allTenants := false
	if v, ok := q["all_tenants"]; ok {
		b, valid := truthy(v[0])
		if !valid {
			return errf(400, "Invalid input for query parameters all_tenants. Value: %s.", v[0])
		}
		if b && !rc.isAdmin() {
			policy := "index"
			if detail {
				policy = "detail"
			}
			return errf(403, "Policy doesn't allow os_compute_api:servers:%s:get_all_tenants to be performed.", policy)
		}
		allTenants = b
	}
	projectFilter := rc.projectID()
	if allTenants {
		projectFilter = q.Get("project_id")
		if projectFilter == "" {
			projectFilter = q.Get("tenant_id")
		}
	}
	var tagsAll, tagsAny, notTags, notTagsAny []string
	if rc.MV.AtLeast(2, 26) {
		split := func(k string) []string {
			if v := q.Get(k); v != "" {
				return strings.Split(v, ",")
			}
			return nil
		}
		tagsAll, tagsAny, notTags, notTagsAny = split("tags"), split("tags-any"), split("not-tags"), split("not-tags-any")
	}
	imageF, flavorF := lastPathSegment(q.Get("image")), lastPathSegment(q.Get("flavor"))
	// Sorting: Nova's default is created_at desc; updated_at (what a
	// changes-since poller wants, ascending) and display_name are common.
	sortKey, sortDesc := "created_at", true
	if v := q.Get("sort_key"); v != "" {
		sortKey, _, _ = strings.Cut(v, ",")
		if !serverSortKeys[sortKey] {
			return errf(400, "Invalid input for query parameters sort_key. Value: %s. '%s' is not one of the allowed sort keys", v, sortKey)
		}
		sortDesc = true
	}
	if v := q.Get("sort_dir"); v != "" {
		d, _, _ := strings.Cut(v, ",")
		switch d {
		case "asc":
			sortDesc = false
		case "desc":
			sortDesc = true
		default:
			return errf(400, "Invalid input for query parameters sort_dir. Value: %s. '%s' is not one of ['asc', 'desc']", v, d)
		}
	}
	seqOrder := sortKey == "created_at" && sortDesc

	defer s.lockNow()()
	// filters are the filters build requests get too (Nova applies them in
	// Python); changes-since/-before and deleted apply to cell rows only.
	filters := func(sv *server) bool {
		if projectFilter != "" && sv.ProjectID != projectFilter {
			return false
		}
		if status != "" && serverStatus(sv.VMState, sv.TaskState) != status {
			return false
		}
		if nameRE != nil && !nameRE.MatchString(sv.Name) {
			return false
		}
		if imageF != "" && sv.ImageRef != imageF {
			return false
		}
		if flavorF != "" && sv.FlavorID != flavorF {
			return false
		}
		for _, t := range tagsAll {
			if !hasString(sv.Tags, t) {
				return false
			}
		}
		if len(tagsAny) > 0 && !anyTag(sv.Tags, tagsAny) {
			return false
		}
		if len(notTags) > 0 && allTags(sv.Tags, notTags) {
			return false
		}
		if len(notTagsAny) > 0 && anyTag(sv.Tags, notTagsAny) {
			return false
		}
		return true
	}
	markerID := ""
	if q.Has("marker") {
		markerID = q.Get("marker")
	}
	var brPage []*server
	brMarker := false
	if !noMatch {
		var e *apiError
		if brPage, brMarker, e = s.buildRequestPage(projectFilter, filters, sortKey, sortDesc, markerID, limit, wantDeleted); e != nil {
			return e
		}
	}
	var markerSeq uint64
	var marker *server
	if markerID != "" && !brMarker {
		marker = s.servers[markerID]
		if marker == nil || marker.buildReq {
			return errf(400, "marker [%s] not found", markerID)
		}
		markerSeq = marker.seq
	}
	match := func(sv *server) bool {
		if sv.buildReq {
			return false
		}
		if seqOrder && markerSeq != 0 && sv.seq >= markerSeq {
			return false
		}
		if sv.Deleted && !changes && !wantDeleted {
			return false
		}
		if wantDeleted && !changes && !sv.Deleted {
			return false
		}
		if !since.IsZero() && sv.Updated.Before(since) {
			return false
		}
		if !before.IsZero() && (sv.Updated.IsZero() || sv.Updated.After(before)) {
			return false
		}
		return filters(sv)
	}
	// Nova gives the cells what the build requests left of the limit.
	cellLimit := limit - len(brPage)
	page := make([]*server, 0, min(limit, 64))
	page = append(page, brPage...)
	if !noMatch && cellLimit > 0 {
		if !seqOrder {
			var cand []*server
			switch {
			case !since.IsZero():
				cand = s.changedServers(since)
			case wantDeleted || changes:
				cand = s.retainedServers(projectFilter)
			default:
				cand = s.liveServers(projectFilter)
			}
			kept := cand[:0]
			for _, sv := range cand {
				if match(sv) {
					kept = append(kept, sv)
				}
			}
			less := serverLess(sortKey, sortDesc)
			sort.Slice(kept, func(i, j int) bool { return less(kept[i], kept[j]) })
			start := 0
			if marker != nil {
				start = sort.Search(len(kept), func(i int) bool { return less(marker, kept[i]) })
			}
			for _, sv := range kept[start:] {
				page = append(page, sv)
				if len(page) == limit {
					break
				}
			}
		} else if !since.IsZero() {
			// changes-since: cost proportional to the changes, not the fleet.
			cand := s.changedServers(since)
			sort.Slice(cand, func(i, j int) bool { return cand[i].seq > cand[j].seq })
			for _, sv := range cand {
				if match(sv) {
					page = append(page, sv)
					if len(page) == limit {
						break
					}
				}
			}
		} else if wantDeleted || changes {
			// Deleted rows asked for (an admin's deleted=true, or only
			// changes-before): every retained server, newest first.
			cand := s.retainedServers(projectFilter)
			for i := len(cand) - 1; i >= 0; i-- {
				if match(cand[i]) {
					page = append(page, cand[i])
					if len(page) == limit {
						break
					}
				}
			}
		} else {
			// The common list: the project's live servers, newest first,
			// from the marker on; deleted servers are not in the index.
			list := s.liveIndex(projectFilter).list
			end := len(list)
			if markerSeq != 0 {
				end = sort.Search(len(list), func(i int) bool { return list[i].seq >= markerSeq })
			}
			for i := end - 1; i >= 0; i-- {
				sv := list[i]
				if sv.Deleted || !match(sv) {
					continue
				}
				page = append(page, sv)
				if len(page) == limit {
					break
				}
			}
		}
	}
	base := s.linkBase(r)
	out := make([]any, 0, len(page))
	for _, sv := range page {
		if detail {
			out = append(out, s.serverView(base, rc, sv))
		} else {
			out = append(out, map[string]any{"id": sv.ID, "name": sv.Name, "links": serverLinks(base, sv.ID)})
		}
	}
	body := map[string]any{"servers": out}
	if limit > 0 && len(page) == limit {
		body["servers_links"] = []any{map[string]any{"rel": "next", "href": nextLink(base+r.URL.Path, q, page[len(page)-1].ID)}}
	}
	writeJSON(w, 200, body)
	return nil
}

func anyTag(have, want []string) bool {
	for _, t := range want {
		if hasString(have, t) {
			return true
		}
	}
	return false
}

func allTags(have, want []string) bool {
	for _, t := range want {
		if !hasString(have, t) {
			return false
		}
	}
	return true
}

// ---- delete ----

func (s *Sim) deleteServer(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	defer s.lockNow()()
	sv, e := s.findServer(rc, r.PathValue("id"), false)
	if e != nil {
		return e
	}
	if sv.Locked && !rc.isAdmin() {
		return errf(409, "Instance %s is locked", sv.ID)
	}
	o := s.decide(OpServerDelete, sv.Name)
	if e := scriptedAPIFault(o, rc); e != nil {
		return e
	}
	now := s.clock.Now()
	if sv.buildReq {
		s.deleteBuildRequest(sv, now)
		if o.kind == FaultLoseResponse {
			rc.LoseResponse()
		}
		w.WriteHeader(204)
		return nil
	}
	a := s.recordAction(sv, rc, "delete", now)
	ev := s.beginEvent(sv, a, "compute_terminate_instance", now)
	s.setTask(sv, "deleting", now)
	switch o.kind {
	case FaultHang:
		s.walk(&sv.resBase) // cancels whatever ran; nothing follows
	case FaultError:
		s.walk(&sv.resBase, step{D: s.timing.ServerDelete, Fn: func(now time.Time) {
			msg := o.message
			if msg == "" {
				msg = "Failed to terminate instance: Timed out waiting for the hypervisor to release the instance"
			}
			s.endEvent(a, ev, false, msg, now)
			s.failServer(sv, msg, "Traceback (most recent call last):\n  File \"/usr/lib/python3/dist-packages/nova/compute/manager.py\", line 3284, in do_terminate_instance\nnova.exception.NovaException: "+msg+"\n", now)
		}})
	default:
		s.walk(&sv.resBase, step{D: s.timing.ServerDelete, Fn: func(now time.Time) {
			s.endEvent(a, ev, true, "", now)
			s.finishDelete(sv, now)
		}})
	}
	if o.kind == FaultLoseResponse {
		rc.LoseResponse()
	}
	w.WriteHeader(204)
	return nil
}

// finishDelete soft-deletes sv: it shows as DELETED to changes-since until
// purged, its volumes are detached (or deleted with delete_on_termination)
// and snapshots still in flight are dropped. Callers hold s.mu.
func (s *Sim) finishDelete(sv *server, now time.Time) {
	for _, im := range append([]*image(nil), s.imageOrder...) {
		if im.Properties["instance_uuid"] == sv.ID && (im.Status == "queued" || im.Status == "saving") {
			s.removeImageLocked(im)
		}
	}
	for _, bv := range sv.Volumes {
		v := s.liveVolume(bv.VolumeID)
		if v == nil {
			continue
		}
		s.detachVolumeRecord(v, sv.ID, now)
		if bv.DeleteOnTerm && len(v.Attachments) == 0 {
			s.setVolumeStatus(v, "deleting", now)
			s.walk(&v.resBase, step{D: s.timing.VolumeDelete, Fn: func(now time.Time) { s.removeVolumeLocked(v) }})
		}
	}
	sv.VMState, sv.TaskState, sv.PowerState = vmDeleted, "", 0
	sv.Deleted = true
	s.unindexLive(sv)
	s.instances[sv.ProjectID]--
	sv.DeletedAt = now.UTC()
	sv.nova.TerminatedAt = now.UTC()
	s.touchServer(sv, now)
	s.retained.push(sv)
	s.purgeDeletedLocked(now)
}

// serverSortKeys are the sort keys the simulator's server lists accept.
var serverSortKeys = map[string]bool{"created_at": true, "updated_at": true, "display_name": true, "uuid": true,
	"launched_at": true, "terminated_at": true}

// serverLess orders servers by key (then by creation order, as Nova adds
// the id as a tie-breaker) in the given direction.
func serverLess(key string, desc bool) func(a, b *server) bool {
	cmp := func(a, b *server) int {
		switch key {
		case "updated_at":
			if c := a.Updated.Compare(b.Updated); c != 0 {
				return c
			}
		case "display_name":
			if c := strings.Compare(a.Name, b.Name); c != 0 {
				return c
			}
		case "uuid":
			if c := strings.Compare(a.ID, b.ID); c != 0 {
				return c
			}
		case "launched_at":
			if c := a.LaunchedAt.Compare(b.LaunchedAt); c != 0 {
				return c
			}
		case "terminated_at":
			if c := a.nova.TerminatedAt.Compare(b.nova.TerminatedAt); c != 0 {
				return c
			}
		}
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	}
	if desc {
		return func(a, b *server) bool { return cmp(a, b) > 0 }
	}
	return func(a, b *server) bool { return cmp(a, b) < 0 }
}
