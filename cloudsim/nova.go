package cloudsim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// novaServer holds the parts of a server that only Nova's API shows.
type novaServer struct {
	SecurityGroups         []string
	AccessIPv4, AccessIPv6 string
	ConfigDrive            bool
	ReservationID          string
	LaunchIndex            int
	Hostname               string
	NetworksNone           bool   // networks "none": addresses stay {}
	IP                     string // fixed IPv4 once networking ran
	MAC                    string
	TerminatedAt           time.Time
	// PrevVMState is the vm_state a resize/migrate started from, so that
	// confirm, revert and a silent rollback return to it.
	PrevVMState string
	// MigrationStatus mirrors Nova's migration record of the last
	// resize/migrate: "finished" while VERIFY_RESIZE waits for the user,
	// "confirming"/"reverting" while that runs, "" otherwise.
	MigrationStatus string
	pass            string // adminPass returned by create
}

// computeHosts are the simulated hypervisors.
var computeHosts = []string{"compute-0", "compute-1", "compute-2"}

// registerCompute registers the Nova routes.
func (s *Sim) registerCompute(mux *http.ServeMux) {
	noAuth := routeOpts{noAuth: true}
	s.handle(mux, svcCompute, "GET /compute", s.computeVersions, noAuth)
	s.handle(mux, svcCompute, "GET /compute/{$}", s.computeVersions, noAuth)
	s.handle(mux, svcCompute, "GET "+computePrefix, s.computeVersion, noAuth)
	s.handle(mux, svcCompute, "GET "+computePrefix+"/{$}", s.computeVersion, noAuth)

	p := computePrefix
	s.handle(mux, svcCompute, "GET "+p+"/flavors", s.listFlavors)
	s.handle(mux, svcCompute, "GET "+p+"/flavors/detail", s.listFlavors)
	s.handle(mux, svcCompute, "GET "+p+"/flavors/{id}", s.showFlavor)
	s.handle(mux, svcCompute, "GET "+p+"/flavors/{id}/os-extra_specs", s.listFlavorExtraSpecs)
	s.handle(mux, svcCompute, "GET "+p+"/flavors/{id}/os-extra_specs/{key}", s.showFlavorExtraSpec)

	s.handle(mux, svcCompute, "POST "+p+"/servers", s.createServer)
	s.handle(mux, svcCompute, "GET "+p+"/servers", s.listServers)
	s.handle(mux, svcCompute, "GET "+p+"/servers/detail", s.listServers)
	s.handle(mux, svcCompute, "GET "+p+"/servers/{id}", s.showServer)
	s.handle(mux, svcCompute, "PUT "+p+"/servers/{id}", s.updateServer)
	s.handle(mux, svcCompute, "DELETE "+p+"/servers/{id}", s.deleteServer)
	s.handle(mux, svcCompute, "POST "+p+"/servers/{id}/action", s.serverAction)

	s.handle(mux, svcCompute, "GET "+p+"/servers/{id}/os-instance-actions", s.listInstanceActions)
	s.handle(mux, svcCompute, "GET "+p+"/servers/{id}/os-instance-actions/{req}", s.showInstanceAction)

	s.handle(mux, svcCompute, "POST "+p+"/servers/{id}/os-volume_attachments", s.attachVolume)
	s.handle(mux, svcCompute, "GET "+p+"/servers/{id}/os-volume_attachments", s.listVolumeAttachments)
	s.handle(mux, svcCompute, "GET "+p+"/servers/{id}/os-volume_attachments/{vol}", s.showVolumeAttachment)
	s.handle(mux, svcCompute, "DELETE "+p+"/servers/{id}/os-volume_attachments/{vol}", s.detachVolume)
}

// seedCompute creates the flavors. Ids are stable so that tests and
// scripts can name them, like devstack's m1.* flavors.
func (s *Sim) seedCompute() {
	s.flavors = []*flavor{
		{ID: "1", Name: "m1.tiny", RAM: 512, VCPUs: 1, Disk: 1},
		{ID: "2", Name: "m1.small", RAM: 2048, VCPUs: 1, Disk: 20},
		{ID: "3", Name: "m1.medium", RAM: 4096, VCPUs: 2, Disk: 40, ExtraSpecs: map[string]string{"hw_rng:allowed": "True"}},
		{ID: "4", Name: "m1.large", RAM: 8192, VCPUs: 4, Disk: 80},
		{ID: "5", Name: "m1.xlarge", RAM: 16384, VCPUs: 8, Disk: 160},
		// A zero-disk flavor: only volume-backed servers may use it.
		{ID: "6", Name: "m1.volume", RAM: 1024, VCPUs: 1, Disk: 0},
	}
	for _, f := range s.flavors {
		f.RxTxFactor = 1.0
		f.Public = true
		if f.ExtraSpecs == nil {
			f.ExtraSpecs = map[string]string{}
		}
	}
}

// linkBase is the URL prefix for links in bodies: the simulator's own URL
// when it serves, else the request's host (Handler used on its own).
func (s *Sim) linkBase(r *http.Request) string {
	if s.baseURL != "" {
		return s.baseURL
	}
	return "http://" + r.Host
}

const novaVersionUpdated = "2013-07-23T11:33:21Z"

func (s *Sim) computeVersionDoc(r *http.Request) map[string]any {
	return map[string]any{
		"id": "v2.1", "status": "CURRENT", "version": ComputeMaxMicroversion, "min_version": ComputeMinMicroversion,
		"updated": novaVersionUpdated,
		"links": []any{
			map[string]any{"rel": "self", "href": s.linkBase(r) + computePrefix + "/"},
			map[string]any{"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"},
		},
		"media-types": []any{map[string]any{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}},
	}
}

func (s *Sim) computeVersions(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	v2 := map[string]any{
		"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "", "updated": "2011-01-21T11:33:21Z",
		"links": []any{map[string]any{"rel": "self", "href": s.linkBase(r) + "/compute/v2/"}},
	}
	v21 := s.computeVersionDoc(r)
	delete(v21, "media-types")
	writeJSON(w, 200, map[string]any{"versions": []any{v2, v21}})
	return nil
}

func (s *Sim) computeVersion(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	writeJSON(w, 200, map[string]any{"version": s.computeVersionDoc(r)})
	return nil
}

// ---- flavors ----

func (s *Sim) flavorByID(id string) *flavor {
	for _, f := range s.flavors {
		if f.ID == id {
			return f
		}
	}
	return nil
}

func (s *Sim) flavorView(r *http.Request, rc *reqCtx, f *flavor, detail bool) map[string]any {
	base := s.linkBase(r)
	v := map[string]any{
		"id": f.ID, "name": f.Name,
		"links": []any{
			map[string]any{"rel": "self", "href": base + computePrefix + "/flavors/" + f.ID},
			map[string]any{"rel": "bookmark", "href": base + "/compute/flavors/" + f.ID},
		},
	}
	if rc.MV.AtLeast(2, 55) {
		v["description"] = nil
	}
	if !detail {
		return v
	}
	v["ram"] = f.RAM
	v["vcpus"] = f.VCPUs
	v["disk"] = f.Disk
	v["OS-FLV-EXT-DATA:ephemeral"] = f.Ephemeral
	v["OS-FLV-DISABLED:disabled"] = false
	v["os-flavor-access:is_public"] = f.Public
	v["rxtx_factor"] = f.RxTxFactor
	if f.Swap == 0 && !rc.MV.AtLeast(2, 75) {
		v["swap"] = ""
	} else {
		v["swap"] = f.Swap
	}
	if rc.MV.AtLeast(2, 61) {
		v["extra_specs"] = cloneMap(f.ExtraSpecs)
	}
	return v
}

func (s *Sim) listFlavors(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	detail := strings.HasSuffix(r.URL.Path, "/detail")
	q := r.URL.Query()
	limit, e := s.limitParam(q.Get("limit"), q.Has("limit"))
	if e != nil {
		return e
	}
	defer s.lockNow()()
	fl := append([]*flavor(nil), s.flavors...)
	sort.Slice(fl, func(i, j int) bool { return fl[i].ID < fl[j].ID })
	if m := q.Get("marker"); q.Has("marker") {
		i := 0
		for i < len(fl) && fl[i].ID != m {
			i++
		}
		if i == len(fl) {
			return errf(400, "marker [%s] not found", m)
		}
		fl = fl[i+1:]
	}
	var out []any
	for _, f := range fl {
		if v := q.Get("minDisk"); v != "" {
			if n, err := strconv.Atoi(v); err != nil {
				return errf(400, "Invalid minDisk filter [%s]", v)
			} else if f.Disk < n {
				continue
			}
		}
		if v := q.Get("minRam"); v != "" {
			if n, err := strconv.Atoi(v); err != nil {
				return errf(400, "Invalid minRam filter [%s]", v)
			} else if f.RAM < n {
				continue
			}
		}
		if len(out) == limit {
			break
		}
		out = append(out, s.flavorView(r, rc, f, detail))
	}
	if out == nil {
		out = []any{}
	}
	body := map[string]any{"flavors": out}
	if limit > 0 && len(out) == limit {
		last := out[len(out)-1].(map[string]any)["id"].(string)
		body["flavors_links"] = []any{map[string]any{"rel": "next", "href": nextLink(s.linkBase(r)+r.URL.Path, q, last)}}
	}
	writeJSON(w, 200, body)
	return nil
}

func (s *Sim) showFlavor(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	defer s.lockNow()()
	f := s.flavorByID(r.PathValue("id"))
	if f == nil {
		return errf(404, "Flavor %s could not be found.", r.PathValue("id"))
	}
	writeJSON(w, 200, map[string]any{"flavor": s.flavorView(r, rc, f, true)})
	return nil
}

// listFlavorExtraSpecs is GET /flavors/{id}/os-extra_specs, which every
// project reader may call (the openstack CLI's flavor list does).
func (s *Sim) listFlavorExtraSpecs(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	defer s.lockNow()()
	f := s.flavorByID(r.PathValue("id"))
	if f == nil {
		return errf(404, "Flavor %s could not be found.", r.PathValue("id"))
	}
	writeJSON(w, 200, map[string]any{"extra_specs": cloneMap(f.ExtraSpecs)})
	return nil
}

func (s *Sim) showFlavorExtraSpec(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	defer s.lockNow()()
	id, key := r.PathValue("id"), r.PathValue("key")
	f := s.flavorByID(id)
	if f == nil {
		return errf(404, "Flavor %s could not be found.", id)
	}
	v, ok := f.ExtraSpecs[key]
	if !ok {
		return errf(404, "Flavor %s has no extra specs with key %s.", id, key)
	}
	writeJSON(w, 200, map[string]any{key: v})
	return nil
}

// ---- shared helpers ----

// limitParam parses Nova's limit, which its query schema declares a
// non-negative integer (pattern ^[0-9]*$, at least one character); the
// value is capped by MaxLimit.
func (s *Sim) limitParam(v string, present bool) (int, *apiError) {
	if !present {
		return s.cfg.MaxLimit, nil
	}
	if v == "" {
		return 0, errf(400, "Invalid input for query parameters limit. Value: . '' is too short")
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, errf(400, "Invalid input for query parameters limit. Value: %s. %s does not match '^[0-9]*$'", v, pyQuote(v))
		}
	}
	n, err := strconv.Atoi(v)
	if err != nil { // more digits than an int holds
		return s.cfg.MaxLimit, nil
	}
	return min(n, s.cfg.MaxLimit), nil
}

// nextLink is Nova's next-page link: the request's own query with the
// marker replaced.
func nextLink(path string, q url.Values, marker string) string {
	params := make(url.Values, len(q)+1)
	for k, v := range q {
		params[k] = v
	}
	params.Set("marker", marker)
	return path + "?" + params.Encode()
}

// findServer returns the server id visible to the caller. Deleted servers
// count only when deletedOK (instance actions at 2.21+).
func (s *Sim) findServer(rc *reqCtx, id string, deletedOK bool) (*server, *apiError) {
	sv := s.servers[id]
	if sv == nil || (sv.Deleted && !deletedOK) || (!rc.isAdmin() && sv.ProjectID != rc.projectID()) {
		return nil, errf(404, "Instance %s could not be found.", id)
	}
	return sv, nil
}

// checkState is Nova's check_instance_state plus the API's translation of
// InstanceInvalidState into 409. tasks nil means "task_state must be null".
func checkState(sv *server, action string, vms []string, tasks []string) *apiError {
	if sv.Locked {
		// Only admins may act on a locked server; the callers that allow
		// admins check that themselves.
		return errf(409, "Instance %s is locked", sv.ID)
	}
	if vms != nil && !hasString(vms, sv.VMState) {
		return errf(409, "Cannot '%s' instance %s while it is in vm_state %s", action, sv.ID, sv.VMState)
	}
	if tasks == nil {
		tasks = []string{""}
	}
	if !hasString(tasks, sv.TaskState) {
		ts := sv.TaskState
		if ts == "" {
			ts = "None"
		}
		return errf(409, "Cannot '%s' instance %s while it is in task_state %s", action, sv.ID, ts)
	}
	return nil
}

func checkStateAs(rc *reqCtx, sv *server, action string, vms, tasks []string) *apiError {
	if sv.Locked && rc.isAdmin() {
		locked := sv.Locked
		sv.Locked = false
		defer func() { sv.Locked = locked }()
	}
	return checkState(sv, action, vms, tasks)
}

func hasString(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// hostID is Nova's hostId: sha224(project_id + host), "" without a host.
func hostID(projectID, host string) string {
	if host == "" {
		return ""
	}
	sum := sha256.Sum224([]byte(projectID + host))
	return hex.EncodeToString(sum[:])
}

// Schema error messages in the form Nova's validator gives jsonschema's:
// "Invalid input for field/attribute <field>. Value: <str(value)>.
// <message>", where the message has repr() of the value. obj is the raw
// JSON of the object that failed, so that its keys print in body order.
func errRequired(parent string, obj json.RawMessage, prop string) *apiError {
	return errf(400, "Invalid input for field/attribute %s. Value: %s. %s is a required property", parent, pyStr(obj), pyQuote(prop))
}

// errType is jsonschema's type error; typ lists the allowed types, comma
// separated ("string, integer").
func errType(field string, value any, typ string) *apiError {
	types := strings.Split(typ, ", ")
	for i, t := range types {
		types[i] = pyQuote(t)
	}
	return errf(400, "Invalid input for field/attribute %s. Value: %s. %s is not of type %s", field, pyStr(value), pyRepr(value), strings.Join(types, ", "))
}

func errAdditional(parent string, obj json.RawMessage, extra string) *apiError {
	return errf(400, "Invalid input for field/attribute %s. Value: %s. Additional properties are not allowed (%s was unexpected)", parent, pyStr(obj), pyQuote(extra))
}

func errNotUUID(field, v string) *apiError {
	return errf(400, "Invalid input for field/attribute %s. Value: %s. %s is not a 'uuid'", field, v, pyQuote(v))
}

// jsonKind classifies a raw JSON value: "null", "string", "number",
// "boolean", "array" or "object".
func jsonKind(raw json.RawMessage) string {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case 'n':
			return "null"
		case '"':
			return "string"
		case 't', 'f':
			return "boolean"
		case '[':
			return "array"
		case '{':
			return "object"
		}
		return "number"
	}
	return "null"
}

// decodeObject decodes the request body into a map of raw fields.
func decodeObject(r *http.Request) (map[string]json.RawMessage, *apiError) {
	var raw json.RawMessage
	if e := decodeBody(r, &raw); e != nil {
		return nil, e
	}
	if jsonKind(raw) != "object" {
		return nil, errf(400, "Malformed request body")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, errf(400, "Malformed request body")
	}
	return m, nil
}

// subObject returns field key of m as an object; a missing key is reported
// with required, a non-object with the schema's type message.
func subObject(m map[string]json.RawMessage, parent, key string, required bool) (map[string]json.RawMessage, bool, *apiError) {
	raw, ok := m[key]
	if !ok {
		if required {
			// A top-level property: jsonschema's error has no path, so
			// Nova gives its message alone.
			return nil, false, errf(400, "%s is a required property", pyQuote(key))
		}
		return nil, false, nil
	}
	if jsonKind(raw) != "object" {
		return nil, true, errType(key, raw, "object")
	}
	var sub map[string]json.RawMessage
	if err := json.Unmarshal(raw, &sub); err != nil {
		return nil, true, errf(400, "Malformed request body")
	}
	return sub, true, nil
}

// stringField reads an optional string field; null counts as absent when
// nullable.
func stringField(m map[string]json.RawMessage, key string, nullable bool) (string, bool, *apiError) {
	raw, ok := m[key]
	if !ok {
		return "", false, nil
	}
	if jsonKind(raw) == "null" && nullable {
		return "", false, nil
	}
	var v string
	if jsonKind(raw) != "string" || json.Unmarshal(raw, &v) != nil {
		return "", true, errType(key, raw, "string")
	}
	return v, true, nil
}

// stringMap reads an object of string values (metadata).
func stringMap(m map[string]json.RawMessage, key string) (map[string]string, *apiError) {
	raw, ok := m[key]
	if !ok {
		return nil, nil
	}
	if jsonKind(raw) != "object" {
		return nil, errType(key, raw, "object")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, errf(400, "Malformed request body")
	}
	out := make(map[string]string, len(obj))
	for k, v := range obj {
		var sv string
		if jsonKind(v) != "string" || json.Unmarshal(v, &sv) != nil {
			return nil, errType(k, v, "string") // jsonschema names the innermost path element
		}
		if len(k) < 1 || len(k) > 255 {
			return nil, errf(400, "Invalid input for field/attribute %s. Value: %s. %s does not match any of the regexes: '^[a-zA-Z0-9-_:. ]{1,255}$'", key, pyStr(raw), pyQuote(k))
		}
		if len(sv) > 255 {
			return nil, errf(400, "Invalid input for field/attribute %s. Value: %s. '%s' is too long", k, sv, sv)
		}
		out[k] = sv
	}
	return out, nil
}
