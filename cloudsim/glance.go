package cloudsim

import (
	"cmp"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Glance v2, as glance/api/v2/images.py answers: image list, show and
// delete, and the version documents. Images are made by seedImages and by
// Nova's createImage (queued → saving → active through setImageStatus).
//
// Delete is synchronous in Glance: 204 and the image is gone (404) at once
// — with delayed_delete the row only turns pending_delete, which the API
// never shows. So the image.delete faults act on the request:
// FaultError answers 500 and leaves the image as it was (a store backend
// failure), FaultHang holds the request open until the client gives up
// (the image stays as it was), and 500/503/429/lose-response act as on
// every route. Timing.ImageDelete is therefore not used.

// Well-known images every simulator starts with.
const (
	// CirrosImageID is the public, active "cirros-0.6.2-x86_64-disk" image.
	CirrosImageID = "0c5e9a2f-7b1d-4e3a-9f6c-2d8b4a7e1c05"
	// CirrosImageName is its name.
	CirrosImageName = "cirros-0.6.2-x86_64-disk"
	// DebianImageID is a public, active and protected image (deleting it
	// gives 403), "debian-12-genericcloud-amd64".
	DebianImageID = "7e3b1d94-25c8-4f6a-b0e7-9a1c3f5d8e26"
	// DebianImageName is its name.
	DebianImageName = "debian-12-genericcloud-amd64"

	glanceLimitDefault = 25 // Glance's limit_param_default
)

func (s *Sim) seedImages() {
	s.mu.Lock()
	defer s.mu.Unlock()
	created := s.clock.Now().Add(-30 * 24 * time.Hour)
	cirros := s.newImageLocked(CirrosImageName, AdminProjectID, "active",
		map[string]string{"hw_rng_model": "virtio", "os_distro": "cirros"}, created)
	s.reID(cirros, CirrosImageID)
	cirros.Visibility, cirros.Size = "public", 21430272
	debian := s.newImageLocked(DebianImageName, AdminProjectID, "active",
		map[string]string{"os_distro": "debian", "os_version": "12"}, created.Add(time.Hour))
	s.reID(debian, DebianImageID)
	debian.Visibility, debian.Size, debian.MinDisk, debian.Protected = "public", 346030080, 2, true
}

// reID gives a freshly made image a fixed id. Callers hold s.mu.
func (s *Sim) reID(im *image, id string) {
	delete(s.images, im.ID)
	im.ID = id
	s.images[id] = im
}

func (s *Sim) registerImage(mux *http.ServeMux) {
	noAuth := routeOpts{noAuth: true}
	versions := func(code int) handlerFunc {
		return func(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
			writeJSON(w, code, glanceVersions(r))
			return nil
		}
	}
	s.handle(mux, svcImage, "GET "+imagePrefix+"/{$}", versions(http.StatusMultipleChoices), noAuth)
	s.handle(mux, svcImage, "GET "+imagePrefix, versions(http.StatusMultipleChoices), noAuth)
	s.handle(mux, svcImage, "GET "+imagePrefix+"/versions", versions(http.StatusOK), noAuth)
	p := imagePrefix + "/v2/images"
	s.handle(mux, svcImage, "GET "+p, s.listImages)
	s.handle(mux, svcImage, "POST "+p, s.createImage)
	s.handle(mux, svcImage, "GET "+p+"/{image_id}", s.showImage)
	s.handle(mux, svcImage, "DELETE "+p+"/{image_id}", s.deleteImage)
}

// glanceVersions is the versions document of a Glance with an image cache
// and a single store: 2.18 current.
func glanceVersions(r *http.Request) map[string]any {
	href := requestBase(r) + imagePrefix + "/v2/"
	ids := []string{"2.18", "2.17", "2.16", "2.15", "2.14", "2.9", "2.7", "2.6", "2.5", "2.4", "2.3", "2.2", "2.1", "2.0"}
	vs := make([]any, len(ids))
	for i, id := range ids {
		status := "SUPPORTED"
		if i == 0 {
			status = "CURRENT"
		}
		vs[i] = map[string]any{"id": "v" + id, "status": status,
			"links": []any{map[string]any{"rel": "self", "href": href}}}
	}
	return map[string]any{"versions": vs}
}

// imageVisible reports whether the caller may see im: admins see every
// image; others see public and community images and their own project's.
// Callers hold s.mu.
func (s *Sim) imageVisible(rc *reqCtx, im *image) bool {
	if rc.isAdmin() {
		return true
	}
	return im.Visibility == "public" || im.Visibility == "community" || im.Owner == rc.projectID()
}

// findImage returns the image the caller may see, or Glance's 404.
// Callers hold s.mu.
func (s *Sim) findImage(rc *reqCtx, id string) (*image, *apiError) {
	im := s.liveImage(id)
	if im == nil || !s.imageVisible(rc, im) {
		return nil, errf(404, "No image found with ID %s", id)
	}
	return im, nil
}

// hiddenProp is where an image's os_hidden flag is kept (image has no
// field for it); it is rendered as the core os_hidden attribute.
const hiddenProp = "os_hidden"

func imageHidden(im *image) bool { return im.Properties[hiddenProp] == "true" }

// imageHasData reports whether image data was uploaded, which is when
// Glance knows its size and hashes.
func imageHasData(im *image) bool {
	return im.Size > 0 && im.Status != "queued" && im.Status != "saving"
}

// imageChecksum is a stand-in md5 (Glance's legacy checksum), stable per image.
func imageChecksum(im *image) string {
	if !imageHasData(im) {
		return ""
	}
	sum := md5.Sum([]byte("cloudsim-image-data:" + im.ID))
	return hex.EncodeToString(sum[:])
}

func imageHash(im *image) string {
	sum := sha512.Sum512([]byte("cloudsim-image-data:" + im.ID))
	return hex.EncodeToString(sum[:])
}

// imageView is the flat Glance image body: custom properties as top-level
// keys next to the core attributes; times RFC 3339 with Z.
func imageView(im *image) map[string]any {
	body := map[string]any{}
	for k, v := range im.Properties {
		if k != hiddenProp {
			body[k] = v
		}
	}
	tags := append([]string{}, im.Tags...)
	body["id"] = im.ID
	body["name"] = strOrNull(im.Name)
	body["status"] = im.Status
	body["visibility"] = im.Visibility
	body["protected"] = im.Protected
	body["os_hidden"] = imageHidden(im)
	body["owner"] = strOrNull(im.Owner)
	body["container_format"] = strOrNull(im.ContainerFormat)
	body["disk_format"] = strOrNull(im.DiskFormat)
	body["min_disk"] = im.MinDisk
	body["min_ram"] = im.MinRAM
	body["size"], body["virtual_size"] = nil, nil
	body["checksum"], body["os_hash_algo"], body["os_hash_value"] = nil, nil, nil
	if imageHasData(im) || im.Status == "active" {
		body["size"] = im.Size
	}
	if imageHasData(im) {
		body["checksum"] = imageChecksum(im)
		body["os_hash_algo"] = "sha512"
		body["os_hash_value"] = imageHash(im)
	}
	body["created_at"] = fmtZ(im.Created)
	body["updated_at"] = fmtZ(im.Updated)
	body["tags"] = tags
	body["self"] = "/v2/images/" + im.ID
	body["file"] = "/v2/images/" + im.ID + "/file"
	body["schema"] = "/v2/schemas/image"
	return body
}

func (s *Sim) showImage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	defer s.lockNow()()
	im, e := s.findImage(rc, r.PathValue("image_id"))
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, imageView(im))
	return nil
}

func (s *Sim) deleteImage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	id := r.PathValue("image_id")
	s.mu.Lock()
	locked := true
	defer func() {
		if locked {
			s.mu.Unlock()
		}
	}()
	s.advanceLocked()
	im := s.liveImage(id)
	if im == nil || !s.imageVisible(rc, im) {
		return errf(404, "Failed to find image %s to delete", id)
	}
	if !rc.isAdmin() && im.Owner != rc.projectID() {
		return errf(403, "You are not authorized to complete delete_image action.")
	}
	if im.Protected {
		return errf(403, "Image %s is protected and cannot be deleted.", id)
	}
	o := s.decide(OpImageDelete, im.Name)
	if e := scriptedAPIFault(o, rc); e != nil {
		return e
	}
	switch o.kind {
	case FaultError:
		return errf(500, "Failed to delete image %s from the store.", id)
	case FaultHang:
		s.mu.Unlock()
		locked = false
		s.sleep(r.Context(), 365*24*time.Hour)
		return errf(504, "Gateway Timeout")
	}
	s.removeImageLocked(im)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

var imageSortKeys = map[string]func(a, b *image) int{
	"name":             func(a, b *image) int { return strings.Compare(a.Name, b.Name) },
	"status":           func(a, b *image) int { return strings.Compare(a.Status, b.Status) },
	"container_format": func(a, b *image) int { return strings.Compare(a.ContainerFormat, b.ContainerFormat) },
	"disk_format":      func(a, b *image) int { return strings.Compare(a.DiskFormat, b.DiskFormat) },
	"size":             func(a, b *image) int { return cmp.Compare(a.Size, b.Size) },
	"id":               func(a, b *image) int { return strings.Compare(a.ID, b.ID) },
	"created_at":       func(a, b *image) int { return a.Created.Compare(b.Created) },
	"updated_at":       func(a, b *image) int { return a.Updated.Compare(b.Updated) },
}

// glanceSortKeyList is imageSortKeys in Glance's order, for its message.
const glanceSortKeyList = "name, status, container_format, disk_format, size, id, created_at, updated_at"

type imageOrderSpec = orderSpec[image]

// parseImageSort is ImagesRequestDeserializer._get_sorting_params plus the
// created_at and id tie-breakers Glance's database layer adds.
func parseImageSort(q url.Values) (imageOrderSpec, *apiError) {
	var keys, dirs []string
	if q.Has("sort") {
		if q.Has("sort_key") || q.Has("sort_dir") {
			return imageOrderSpec{}, errf(400, "Old and new sorting syntax cannot be combined")
		}
		keys, dirs = splitSortParam(q.Get("sort"))
	} else {
		keys = q["sort_key"]
		dirs = q["sort_dir"]
		if len(dirs) > 1 && len(dirs) != len(keys) {
			return imageOrderSpec{}, errf(400, "Number of sort dirs does not match the number of sort keys")
		}
		if len(keys) == 0 {
			keys = []string{"created_at"}
		}
		if len(dirs) == 0 {
			dirs = []string{"desc"}
		}
		for len(dirs) < len(keys) {
			dirs = append(dirs, dirs[0])
		}
	}
	var o imageOrderSpec
	for i, k := range keys {
		c, ok := imageSortKeys[k]
		if !ok {
			return imageOrderSpec{}, errf(400, "Invalid sort key: %s. It must be one of the following: %s.", k, glanceSortKeyList)
		}
		if dirs[i] != "asc" && dirs[i] != "desc" {
			return imageOrderSpec{}, errf(400, "Invalid sort direction: %s", dirs[i])
		}
		o.cmps = append(o.cmps, c)
		o.desc = append(o.desc, dirs[i] == "desc")
	}
	for _, k := range []string{"created_at", "id"} {
		if !contains(keys, k) {
			o.cmps = append(o.cmps, imageSortKeys[k])
			o.desc = append(o.desc, o.desc[0])
		}
	}
	return o, nil
}

type imageFilter func(im *image) bool

// imageListParams are the query parameters that are not filters.
var imageListParams = map[string]bool{"limit": true, "marker": true, "sort": true, "sort_key": true,
	"sort_dir": true, "member_status": true}

// parseImageFilters reads Glance's list filters. Keys Glance does not know
// are filters on custom properties, as in Glance.
func parseImageFilters(q url.Values, rc *reqCtx) ([]imageFilter, *apiError) {
	var fs []imageFilter
	visibility := q.Get("visibility")
	switch visibility {
	case "", "all":
	case "public", "private", "shared", "community":
		fs = append(fs, func(im *image) bool { return im.Visibility == visibility })
	default:
		return nil, errf(400, "Invalid visibility value: %s", visibility)
	}
	if visibility != "community" && visibility != "all" {
		// Community images are listed only when asked for, or when owned.
		fs = append(fs, func(im *image) bool { return im.Visibility != "community" || im.Owner == rc.projectID() })
	}
	if q.Has("changes-since") {
		return nil, errf(400, `The "changes-since" filter is no longer available on v2.`)
	}
	hidden := strings.ToLower(q.Get("os_hidden"))
	if hidden != "" && hidden != "true" && hidden != "false" {
		return nil, errf(400, "Invalid value '%s' for 'os_hidden' filter. Valid values are 'true' or 'false'.", hidden)
	}
	wantHidden := hidden == "true"
	fs = append(fs, func(im *image) bool { return imageHidden(im) == wantHidden })
	if q.Has("protected") {
		p := q.Get("protected")
		if p != "true" && p != "false" {
			return nil, errf(400, "Invalid value '%s' for 'protected' filter. Valid values are 'true' or 'false'.", p)
		}
		fs = append(fs, func(im *image) bool { return im.Protected == (p == "true") })
	}
	for key, vals := range q {
		if imageListParams[key] || len(vals) == 0 {
			continue
		}
		val := vals[len(vals)-1]
		switch key {
		case "visibility", "os_hidden", "protected":
		case "tag":
			want := vals
			fs = append(fs, func(im *image) bool {
				for _, t := range want {
					if !contains(im.Tags, strings.TrimSpace(t)) {
						return false
					}
				}
				return true
			})
		case "name":
			fs = append(fs, func(im *image) bool { return im.Name == val })
		case "status":
			fs = append(fs, func(im *image) bool { return im.Status == val })
		case "owner":
			fs = append(fs, func(im *image) bool { return im.Owner == val })
		case "container_format":
			fs = append(fs, func(im *image) bool { return im.ContainerFormat == val })
		case "disk_format":
			fs = append(fs, func(im *image) bool { return im.DiskFormat == val })
		case "id":
			ids := strings.Split(strings.TrimPrefix(val, "in:"), ",")
			fs = append(fs, func(im *image) bool { return contains(ids, im.ID) })
		case "size_min", "size_max":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return nil, errf(400, "Unable to filter using the specified range.")
			}
			if key == "size_min" {
				fs = append(fs, func(im *image) bool { return im.Size >= n })
			} else {
				fs = append(fs, func(im *image) bool { return im.Size <= n })
			}
		case "created_at", "updated_at":
			// Glance's time filters take the same op:time form as Cinder's.
			f, e := parseTimeComparison(key, val)
			if e != nil {
				return nil, e
			}
			fs = append(fs, func(im *image) bool {
				return f(&volume{Created: im.Created, Updated: im.Updated})
			})
		default:
			fs = append(fs, func(im *image) bool {
				got, ok := im.Properties[key]
				return ok && got == val
			})
		}
	}
	return fs, nil
}

func (s *Sim) listImages(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	q := r.URL.Query()
	limit := glanceLimitDefault
	if q.Has("limit") {
		n, err := strconv.Atoi(strings.TrimSpace(q.Get("limit")))
		if err != nil {
			return errf(400, "limit param must be an integer")
		}
		if n < 0 {
			return errf(400, "limit param must be positive")
		}
		limit = n
	}
	limit = min(limit, s.cfg.MaxLimit)
	if ms := q.Get("member_status"); ms != "" && ms != "accepted" && ms != "pending" && ms != "rejected" && ms != "all" {
		return errf(400, "Invalid status: %s", ms)
	}
	order, e := parseImageSort(q)
	if e != nil {
		return e
	}
	filters, e := parseImageFilters(q, rc)
	if e != nil {
		return e
	}

	defer s.lockNow()()
	var marker *image
	if q.Has("marker") {
		m := s.liveImage(q.Get("marker"))
		if m == nil || !s.imageVisible(rc, m) {
			return errf(400, "No image found with ID %s", q.Get("marker"))
		}
		marker = m
	}
	var items []*image
next:
	for _, im := range s.imageOrder {
		if im.Deleted || !s.imageVisible(rc, im) {
			continue
		}
		for _, f := range filters {
			if !f(im) {
				continue next
			}
		}
		if marker != nil && order.compare(im, marker) <= 0 {
			continue
		}
		items = append(items, im)
	}
	sort.SliceStable(items, func(i, j int) bool { return order.compare(items[i], items[j]) < 0 })
	items = items[:min(limit, len(items))]

	views := make([]any, len(items))
	for i, im := range items {
		views[i] = imageView(im)
	}
	// ImagesResponseSerializer.index: first and next are relative to the
	// versioned root; next only when the page is full.
	params := url.Values{}
	for k, vs := range q {
		if k != "marker" {
			params[k] = vs
		}
	}
	body := map[string]any{"images": views, "first": "/v2/images", "schema": "/v2/schemas/images"}
	if len(params) > 0 {
		body["first"] = "/v2/images?" + params.Encode()
	}
	if len(items) > 0 && len(items) == limit {
		params.Set("marker", items[len(items)-1].ID)
		body["next"] = "/v2/images?" + params.Encode()
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

// Schema enums of glance/api/v2/images.py (get_base_properties).
var (
	glanceDiskFormats      = []string{"ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"}
	glanceContainerFormats = []string{"ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"}
	glanceVisibilities     = []string{"community", "public", "private", "shared"}
	glanceReadOnly         = []string{"created_at", "updated_at", "status", "checksum", "size", "virtual_size",
		"direct_url", "self", "file", "schema", "os_hash_algo", "os_hash_value", "stores", "locations"}
)

func schemaMismatch(format string, args ...any) *apiError {
	return errf(400, "Provided object does not match schema 'image': "+format, args...)
}

// createImage is POST /v2/images: an image record in "queued", with no
// data (uploads and imports are not simulated).
func (s *Sim) createImage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	raw, e := decodeJSONAny(r)
	if e != nil {
		return errf(400, "Malformed JSON in request body.")
	}
	body, ok := raw.(map[string]any)
	if !ok {
		return errf(400, "Malformed JSON in request body.")
	}
	for _, k := range glanceReadOnly {
		if _, ok := body[k]; ok {
			return errf(403, "Attribute '%s' is read-only.", k)
		}
	}
	im := &image{Visibility: "shared", Owner: rc.projectID(), Properties: map[string]string{}}
	var id string
	for k, v := range body {
		str, isStr := v.(string)
		switch k {
		case "id":
			if !isStr || !validUUID(str) {
				return schemaMismatch("%s does not match '^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$'", pyRepr(v))
			}
			id = strings.ToLower(str)
		case "name":
			if v != nil && (!isStr || len([]rune(str)) > 255) {
				return schemaMismatch("%s is not of type 'null', 'string'", pyRepr(v))
			}
			im.Name = str
		case "visibility":
			if !contains(glanceVisibilities, str) {
				return schemaMismatch("%s is not one of ['community', 'public', 'private', 'shared']", pyRepr(v))
			}
			im.Visibility = str
		case "disk_format":
			if v != nil && !contains(glanceDiskFormats, str) {
				return schemaMismatch("%s is not one of %s", pyRepr(v), pyRepr(anySlice(glanceDiskFormats)))
			}
			im.DiskFormat = str
		case "container_format":
			if v != nil && !contains(glanceContainerFormats, str) {
				return schemaMismatch("%s is not one of %s", pyRepr(v), pyRepr(anySlice(glanceContainerFormats)))
			}
			im.ContainerFormat = str
		case "protected", "os_hidden":
			b, isBool := v.(bool)
			if !isBool {
				return schemaMismatch("%s is not of type 'boolean'", pyRepr(v))
			}
			if k == "protected" {
				im.Protected = b
			} else if b {
				im.Properties[hiddenProp] = "true"
			}
		case "min_disk", "min_ram":
			n, err := strconv.Atoi(pyStr(v))
			if !jsonIs(v, "integer") || err != nil || n < 0 {
				return schemaMismatch("%s is not of type 'integer'", pyRepr(v))
			}
			if k == "min_disk" {
				im.MinDisk = n
			} else {
				im.MinRAM = n
			}
		case "owner":
			if v != nil && !isStr {
				return schemaMismatch("%s is not of type 'null', 'string'", pyRepr(v))
			}
			if str != "" && str != rc.projectID() && !rc.isAdmin() {
				return errf(403, "You are not permitted to create images owned by '%s'.", str)
			}
			im.Owner = str
		case "tags":
			list, isList := v.([]any)
			if !isList {
				return schemaMismatch("%s is not of type 'array'", pyRepr(v))
			}
			for _, t := range list {
				ts, ok := t.(string)
				if !ok || len([]rune(ts)) > 255 {
					return schemaMismatch("%s is not of type 'string'", pyRepr(t))
				}
				if !contains(im.Tags, ts) {
					im.Tags = append(im.Tags, ts)
				}
			}
		case "location", "deleted", "deleted_at":
			return errf(403, "Attribute '%s' is reserved.", k)
		default:
			if len([]rune(k)) > 255 {
				return errf(400, "Custom property should not be greater than 255 characters.")
			}
			if strings.HasPrefix(k, "os_glance") {
				return errf(403, "Attribute '%s' is reserved.", k)
			}
			if !isStr {
				return schemaMismatch("%s is not of type 'string'", pyRepr(v))
			}
			im.Properties[k] = str
		}
	}
	// Glance's default policy (publicize_image) lets only admins make an
	// image public.
	if im.Visibility == "public" && !rc.isAdmin() {
		return errf(403, "You are not authorized to complete publicize_image action.")
	}
	defer s.lockNow()()
	if id != "" && s.images[id] != nil {
		return errf(409, "Image with identifier %s already exists!", id)
	}
	created := s.newImageLocked(im.Name, im.Owner, "queued", im.Properties, s.clock.Now())
	if id != "" {
		s.reID(created, id)
	}
	created.Visibility, created.Protected, created.Tags = im.Visibility, im.Protected, im.Tags
	created.ContainerFormat, created.DiskFormat = im.ContainerFormat, im.DiskFormat
	created.MinDisk, created.MinRAM = im.MinDisk, im.MinRAM
	w.Header().Set("Location", requestBase(r)+imagePrefix+"/v2/images/"+created.ID)
	writeJSON(w, http.StatusCreated, imageView(created))
	return nil
}

func anySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
