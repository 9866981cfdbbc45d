package cloudsim

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// volumeView renders v as cinder/api/v3/views/volumes.py does for the
// caller's microversion and role. ext adds what Cinder's API extensions add
// to show and list (but not to the create response): the tenant attribute,
// admin-only host and migration attributes, and volume_image_metadata.
// Callers hold s.mu.
func (s *Sim) volumeView(r *http.Request, rc *reqCtx, v *volume, ext bool) map[string]any {
	admin := rc.isAdmin()
	attachments := []any{}
	for _, a := range v.Attachments {
		// Only attachments whose attach_status is "attached" are shown; a
		// detaching attachment still has that attach_status.
		if a.Status != "attached" && a.Status != "detaching" {
			continue
		}
		var host any
		if admin && a.HostName != "" {
			host = a.HostName
		}
		attachments = append(attachments, map[string]any{
			"id": v.ID, "attachment_id": a.ID, "volume_id": v.ID, "server_id": a.ServerID,
			"host_name": host, "device": a.Device, "attached_at": noZOrNull(a.AttachedAt),
		})
	}
	scheduled := v.Status != "creating" || !v.Updated.IsZero()
	body := map[string]any{
		"id": v.ID, "status": v.Status, "size": v.Size, "availability_zone": v.AZ,
		"created_at": fmtNoZ(v.Created), "updated_at": noZOrNull(v.Updated),
		"name": strOrNull(v.Name), "description": strOrNull(v.Description),
		"volume_type": v.VolumeType, "snapshot_id": strOrNull(v.SnapshotID), "source_volid": strOrNull(v.SourceVol),
		"metadata": metadataView(v.Metadata), "links": s.volumeLinks(r, v.ID), "user_id": v.UserID,
		"bootable": strconv.FormatBool(v.Bootable), "encrypted": false, "replication_status": nil,
		"consistencygroup_id": nil, "multiattach": v.Multiattach, "attachments": attachments,
	}
	if admin {
		body["migration_status"] = nil
	}
	mv := rc.MV
	if mv.AtLeast(3, 13) {
		body["group_id"] = nil
	}
	if admin && mv.AtLeast(3, 21) {
		body["provider_id"] = nil
	}
	if mv.AtLeast(3, 48) {
		body["shared_targets"] = true
		body["service_uuid"] = nil
		if scheduled {
			body["service_uuid"] = cinderServiceUUID
		}
	}
	if admin && mv.AtLeast(3, 61) {
		body["cluster_name"] = nil
	}
	if mv.AtLeast(3, 63) {
		_, id, _ := volumeTypeLookup(v.VolumeType)
		body["volume_type_id"] = id
	}
	if mv.AtLeast(3, 65) {
		body["consumes_quota"] = true
	}
	if ext {
		body["os-vol-tenant-attr:tenant_id"] = v.ProjectID
		if admin {
			body["os-vol-host-attr:host"] = nil
			if scheduled {
				body["os-vol-host-attr:host"] = cinderBackendHost
			}
			body["os-vol-mig-status-attr:migstat"] = nil
			body["os-vol-mig-status-attr:name_id"] = nil
		}
		if len(v.ImageMeta) > 0 {
			body["volume_image_metadata"] = cloneMap(v.ImageMeta)
		}
	}
	return body
}

func (s *Sim) volumeLinks(r *http.Request, id string) []any {
	project := r.PathValue("project_id")
	base := requestBase(r)
	return []any{
		map[string]any{"rel": "self", "href": base + volumePrefix + "/" + project + "/volumes/" + id},
		map[string]any{"rel": "bookmark", "href": base + "/volume/" + project + "/volumes/" + id},
	}
}

func noZOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return fmtNoZ(t)
}

func strOrNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// volumeSortKeys maps Cinder's accepted sort keys to comparisons.
var volumeSortKeys = map[string]func(a, b *volume) int{
	"created_at":        func(a, b *volume) int { return a.Created.Compare(b.Created) },
	"updated_at":        func(a, b *volume) int { return a.Updated.Compare(b.Updated) },
	"id":                func(a, b *volume) int { return strings.Compare(a.ID, b.ID) },
	"name":              func(a, b *volume) int { return strings.Compare(a.Name, b.Name) },
	"display_name":      func(a, b *volume) int { return strings.Compare(a.Name, b.Name) },
	"size":              func(a, b *volume) int { return a.Size - b.Size },
	"status":            func(a, b *volume) int { return strings.Compare(a.Status, b.Status) },
	"availability_zone": func(a, b *volume) int { return strings.Compare(a.AZ, b.AZ) },
	"bootable":          func(a, b *volume) int { return boolCmp(a.Bootable, b.Bootable) },
	"user_id":           func(a, b *volume) int { return strings.Compare(a.UserID, b.UserID) },
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// volumeOrder is a parsed sort specification: keys with directions, the
// default keys (created_at, id) appended as cinder's process_sort_params does.
type volumeOrderSpec = orderSpec[volume]

func parseVolumeSort(q url.Values) (volumeOrderSpec, *apiError) {
	var keys, dirs []string
	if q.Has("sort") {
		if q.Has("sort_key") || q.Has("sort_dir") {
			return volumeOrderSpec{}, errf(400, "The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with the 'sort' parameter.")
		}
		keys, dirs = splitSortParam(q.Get("sort"))
	} else {
		if q.Has("sort_key") {
			for _, k := range strings.Split(q.Get("sort_key"), ",") {
				keys = append(keys, strings.TrimSpace(k))
			}
		}
		if q.Has("sort_dir") {
			for _, d := range strings.Split(q.Get("sort_dir"), ",") {
				dirs = append(dirs, strings.TrimSpace(d))
			}
		}
		for len(dirs) < len(keys) {
			dirs = append(dirs, "desc")
		}
	}
	defDir := "desc"
	if len(dirs) > 0 {
		defDir = dirs[0]
	}
	for _, k := range []string{"created_at", "id"} {
		if !contains(keys, k) {
			keys = append(keys, k)
			dirs = append(dirs, defDir)
		}
	}
	var o volumeOrderSpec
	for i, k := range keys {
		c, ok := volumeSortKeys[k]
		if !ok {
			return volumeOrderSpec{}, errf(400, "Invalid input received: Invalid sort key")
		}
		if dirs[i] != "asc" && dirs[i] != "desc" {
			return volumeOrderSpec{}, errf(400, "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'")
		}
		o.cmps = append(o.cmps, c)
		o.desc = append(o.desc, dirs[i] == "desc")
	}
	return o, nil
}

// volumeFilter is one parsed list filter.
type volumeFilter func(v *volume) bool

// parseVolumeFilters reads the filters of resource_filters.json's "volume"
// entry that make sense here; others are dropped silently, as Cinder does
// for non-admins.
func parseVolumeFilters(q url.Values, mv microversion) ([]volumeFilter, *apiError) {
	var fs []volumeFilter
	for key, vals := range q {
		if len(vals) == 0 {
			continue
		}
		val := vals[len(vals)-1]
		switch key {
		case "status":
			fs = append(fs, func(v *volume) bool { return v.Status == val })
		case "name":
			fs = append(fs, func(v *volume) bool { return v.Name == val })
		case "availability_zone":
			fs = append(fs, func(v *volume) bool { return v.AZ == val })
		case "size":
			n, err := strconv.Atoi(strings.TrimSpace(val))
			if err != nil {
				fs = append(fs, func(*volume) bool { return false })
				continue
			}
			fs = append(fs, func(v *volume) bool { return v.Size == n })
		case "bootable":
			var want bool
			if mv.AtLeast(3, 2) {
				b, ok := parseBoolString(val)
				if !ok {
					return nil, errf(400, "Invalid input received: 'bootable = %s'", val)
				}
				want = b
			} else {
				want = val != "False" && val != "false" && val != "FALSE"
			}
			fs = append(fs, func(v *volume) bool { return v.Bootable == want })
		case "metadata":
			want, ok := parsePyDict(val)
			if !ok {
				fs = append(fs, func(*volume) bool { return false })
				continue
			}
			fs = append(fs, func(v *volume) bool {
				for k, x := range want {
					if got, ok := v.Metadata[k]; !ok || got != x {
						return false
					}
				}
				return true
			})
		case "created_at", "updated_at":
			if !mv.AtLeast(3, 60) {
				continue
			}
			f, e := parseTimeComparison(key, val)
			if e != nil {
				return nil, e
			}
			fs = append(fs, f)
		}
	}
	return fs, nil
}

// parseTimeComparison parses "gte:2024-01-01T00:00:00Z,lt:..." (from 3.60).
// A null updated_at matches nothing, as in SQL.
func parseTimeComparison(key, val string) (volumeFilter, *apiError) {
	type cmp struct {
		op string
		t  time.Time
	}
	var cs []cmp
	for _, unit := range strings.Split(val, ",") {
		op, ts, ok := strings.Cut(unit, ":")
		if !ok {
			return nil, errf(400, "Invalid %s value", key)
		}
		switch op {
		case "gt", "gte", "eq", "neq", "lt", "lte":
		default:
			return nil, errf(400, "Invalid %s operator", op)
		}
		t, ok := parseISOTime(ts)
		if !ok {
			return nil, errf(400, "Invalid %s value", ts)
		}
		cs = append(cs, cmp{op, t})
	}
	return func(v *volume) bool {
		at := v.Created
		if key == "updated_at" {
			at = v.Updated
		}
		if at.IsZero() {
			return false
		}
		for _, c := range cs {
			d := at.Compare(c.t)
			ok := map[string]bool{"gt": d > 0, "gte": d >= 0, "eq": d == 0, "neq": d != 0, "lt": d < 0, "lte": d <= 0}[c.op]
			if !ok {
				return false
			}
		}
		return true
	}, nil
}

// parseISOTime accepts the ISO 8601 forms oslo's parse_isotime does that
// clients actually send: with or without fractions and zone.
func parseISOTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// parseLimit is cinder/api/common.py:_get_limit_param.
func parseLimit(q url.Values, maxLimit int) (int, *apiError) {
	if !q.Has("limit") {
		return maxLimit, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(q.Get("limit")))
	if err != nil {
		return 0, errf(400, "limit param must be an integer")
	}
	if n < 0 {
		return 0, errf(400, "limit param must be positive")
	}
	return min(n, maxLimit), nil
}

func (s *Sim) listVolumes(detail bool) handlerFunc {
	collection := "volumes"
	if detail {
		collection = "volumes/detail"
	}
	return func(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
		if e := checkProject(r, rc); e != nil {
			return e
		}
		q := r.URL.Query()
		limit, e := parseLimit(q, s.cfg.MaxLimit)
		if e != nil {
			return e
		}
		offset := 0
		if q.Has("offset") {
			n, err := strconv.Atoi(strings.TrimSpace(q.Get("offset")))
			if err != nil {
				return errf(400, "Invalid input received: offset must be an integer")
			}
			if n < 0 || n > cinderDBMaxInt {
				return errf(400, "Invalid input received: offset must be >= 0 and <= %d", cinderDBMaxInt)
			}
			offset = n
		}
		order, e := parseVolumeSort(q)
		if e != nil {
			return e
		}
		filters, e := parseVolumeFilters(q, rc.MV)
		if e != nil {
			return e
		}
		allTenants := false
		if rc.isAdmin() {
			allTenants, _ = parseBoolString(q.Get("all_tenants"))
		}

		defer s.lockNow()()
		var marker *volume
		if q.Has("marker") {
			m, e := s.findVolume(rc, q.Get("marker"))
			if e != nil {
				return e
			}
			marker = m
		}
		var items []*volume
	next:
		for _, v := range s.volumeOrder {
			if v.Deleted || (!allTenants && v.ProjectID != rc.projectID()) {
				continue
			}
			for _, f := range filters {
				if !f(v) {
					continue next
				}
			}
			if marker != nil && order.compare(v, marker) <= 0 {
				continue
			}
			items = append(items, v)
		}
		sort.SliceStable(items, func(i, j int) bool { return order.compare(items[i], items[j]) < 0 })
		items = items[min(offset, len(items)):]
		items = items[:min(limit, len(items))]

		views := make([]any, len(items))
		for i, v := range items {
			if detail {
				views[i] = s.volumeView(r, rc, v, true)
			} else {
				views[i] = map[string]any{"id": v.ID, "name": strOrNull(v.Name), "links": s.volumeLinks(r, v.ID)}
			}
		}
		body := map[string]any{"volumes": views}
		// Cinder's _get_collection_links: a next link whenever the page
		// holds as many items as the (capped) limit asked for.
		if len(items) > 0 && limit <= len(items) {
			nq := url.Values{}
			for k, vs := range q {
				nq[k] = vs
			}
			nq.Set("marker", items[len(items)-1].ID)
			href := requestBase(r) + volumePrefix + "/" + r.PathValue("project_id") + "/" + collection + "?" + nq.Encode()
			body["volumes_links"] = []any{map[string]any{"rel": "next", "href": href}}
		}
		if rc.MV.AtLeast(3, 45) {
			if wc, _ := parseBoolString(q.Get("with_count")); wc {
				body["count"] = s.countVolumes(rc, filters, allTenants)
			}
		}
		writeJSON(w, http.StatusOK, body)
		return nil
	}
}

func (s *Sim) countVolumes(rc *reqCtx, filters []volumeFilter, allTenants bool) int {
	n := 0
next:
	for _, v := range s.volumeOrder {
		if v.Deleted || (!allTenants && v.ProjectID != rc.projectID()) {
			continue
		}
		for _, f := range filters {
			if !f(v) {
				continue next
			}
		}
		n++
	}
	return n
}

// orderSpec is a parsed sort specification (Cinder's and Glance's
// sort=key:dir,... or sort_key/sort_dir): comparisons applied in turn,
// each ascending or descending.
type orderSpec[T any] struct {
	cmps []func(a, b *T) int
	desc []bool
}

func (o orderSpec[T]) compare(a, b *T) int {
	for i, c := range o.cmps {
		if d := c(a, b); d != 0 {
			if o.desc[i] {
				return -d
			}
			return d
		}
	}
	return 0
}

// splitSortParam splits sort=key[:dir],... (dir defaults to desc).
func splitSortParam(v string) (keys, dirs []string) {
	for _, part := range strings.Split(strings.TrimSpace(v), ",") {
		k, d, _ := strings.Cut(part, ":")
		if d == "" {
			d = "desc"
		}
		keys = append(keys, strings.TrimSpace(k))
		dirs = append(dirs, strings.TrimSpace(d))
	}
	return keys, dirs
}
