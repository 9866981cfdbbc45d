package cloudsim

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Nova's build requests, modelled when Timing.BuildRequests is set.
//
// A server that Nova has accepted but not yet scheduled exists only as a
// row of the API database's build_requests table; the conductor creates
// the instance in its cell's database once the scheduler has picked a host,
// then deletes the build request. Listing servers (nova/compute/api.py
// get_all) puts the build requests, filtered and sorted in Python
// (BuildRequestList.get_by_filters), in front of the cell instances, which
// the database filters and sorts, and applies limit to the merge. Three
// consequences are visible to clients, and cloudsim reproduces each:
//
//   - changes-since does not apply to build requests: they are always
//     listed, and their updated_at is None, so their "updated" reads as
//     the time of the request (nova.utils.isotime(None) is now);
//   - sorting two or more build requests by a key whose value is None
//     (updated_at, launched_at, terminated_at) compares None with None and
//     raises TypeError, so the list answers 500 with Nova's computeFault;
//   - a marker is looked up among the build requests first: when it is one,
//     the cells are listed from their start, and when it is not (it moved
//     to a cell between two page requests), the build requests are left out
//     and the cells continue after the marker, so pages repeat some
//     servers and skip others while servers move.

// ErrNoBuildRequest is returned by ScheduleBuildRequest for a server that
// is not (or no longer) in its build-request phase.
var ErrNoBuildRequest = errors.New("cloudsim: server has no build request")

// typeErrorFault is the body Nova's API answers when a Python exception
// escapes a handler: here the TypeError of sorting build requests by a key
// whose values are None.
const typeErrorFault = "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ and attach the Nova API log if possible.\n<class 'TypeError'>"

// enterBuildRequest makes a just-created server a build request: it is in
// no cell yet and its updated_at is NULL. Callers hold s.mu.
func (s *Sim) enterBuildRequest(sv *server) {
	sv.buildReq = true
	sv.Updated = time.Time{}
	s.buildReqs[sv.ProjectID] = append(s.buildReqs[sv.ProjectID], sv)
}

// leaveBuildRequest is the conductor's hand-off: the instance now lives in
// a cell (with the build request's updated_at, NULL unless the server was
// updated meanwhile) and the build request is gone. Callers hold s.mu.
func (s *Sim) leaveBuildRequest(sv *server) {
	if !sv.buildReq {
		return
	}
	sv.buildReq = false
	sv.release = nil
	list := s.buildReqs[sv.ProjectID]
	list = slices.DeleteFunc(list, func(o *server) bool { return o == sv })
	if len(list) == 0 {
		delete(s.buildReqs, sv.ProjectID)
	} else {
		s.buildReqs[sv.ProjectID] = list
	}
}

// deleteBuildRequest is Nova's delete of a server that has not reached a
// cell: the build request is destroyed, the build never goes on, and no
// instance record is left (so changes-since never shows it DELETED).
// Callers hold s.mu.
func (s *Sim) deleteBuildRequest(sv *server, now time.Time) {
	s.leaveBuildRequest(sv)
	sv.gen++ // the pending hand-off does nothing now
	for _, bv := range sv.Volumes {
		if v := s.liveVolume(bv.VolumeID); v != nil {
			s.detachVolumeRecord(v, sv.ID, now)
		}
	}
	sv.Deleted = true
	s.unindexLive(sv)
	s.instances[sv.ProjectID]--
	delete(s.servers, sv.ID)
}

// BuildRequests returns the ids of the servers that exist only as build
// requests, oldest first.
func (s *Sim) BuildRequests() []string {
	defer s.lockNow()()
	var all []*server
	for _, list := range s.buildReqs {
		all = append(all, list...)
	}
	slices.SortFunc(all, func(a, b *server) int { return cmp.Compare(a.seq, b.seq) })
	ids := make([]string, len(all))
	for i, sv := range all {
		ids[i] = sv.ID
	}
	return ids
}

// ScheduleBuildRequest ends the build-request phase of server id now, as
// Nova's conductor does once the scheduler has picked a host: the server
// moves to its cell and its build goes on from there. Tests use it to move
// servers at chosen moments (between two page requests, say); it wraps
// ErrNoBuildRequest when the server is not a build request.
func (s *Sim) ScheduleBuildRequest(id string) error {
	defer s.lockNow()()
	sv := s.servers[id]
	if sv == nil || !sv.buildReq || sv.release == nil {
		return fmt.Errorf("%w: %s", ErrNoBuildRequest, id)
	}
	sv.release(s.clock.Now())
	return nil
}

// noneSortKeys are the sort keys whose value is None on every build
// request (updated_at only until the server is updated).
var noneSortKeys = map[string]bool{"updated_at": true, "launched_at": true, "terminated_at": true}

// brSortNone reports whether sv's value for key is None.
func brSortNone(sv *server, key string) bool {
	return key != "updated_at" || sv.Updated.IsZero()
}

// buildRequestPage is BuildRequestList.get_by_filters for one list
// request: the caller's build requests that pass match, sorted as Nova
// sorts them in Python ([key, created_at, id], every key in the one
// direction), after the marker, at most limit. markerFound reports
// whether the marker was one of them; Nova then lists the cells from their
// start. An error is the 500 of sorting by a key that is None.
func (s *Sim) buildRequestPage(projectFilter string, match func(*server) bool, key string, desc bool,
	marker string, limit int, deleted bool) (page []*server, markerFound bool, err *apiError) {
	if limit == 0 || deleted || len(s.buildReqs) == 0 {
		return nil, false, nil
	}
	var brs []*server
	add := func(list []*server) {
		for _, sv := range list {
			if match(sv) {
				brs = append(brs, sv)
			}
		}
	}
	if projectFilter != "" {
		add(s.buildReqs[projectFilter])
	} else {
		for _, list := range s.buildReqs {
			add(list)
		}
	}
	if len(brs) < 2 && marker == "" {
		return brs[:min(len(brs), limit)], false, nil
	}
	if len(brs) >= 2 && noneSortKeys[key] && slices.ContainsFunc(brs, func(sv *server) bool { return brSortNone(sv, key) }) {
		return nil, false, errf(500, "%s", typeErrorFault)
	}
	slices.SortStableFunc(brs, func(a, b *server) int {
		c := 0
		switch key {
		case "display_name":
			c = strings.Compare(a.Name, b.Name)
		case "uuid":
			c = strings.Compare(a.ID, b.ID)
		case "updated_at":
			c = a.Updated.Compare(b.Updated)
		}
		if c == 0 {
			c = a.Created.Compare(b.Created)
		}
		if c == 0 {
			c = cmp.Compare(a.seq, b.seq)
		}
		if desc {
			return -c
		}
		return c
	})
	if marker != "" {
		i := slices.IndexFunc(brs, func(sv *server) bool { return sv.ID == marker })
		if i < 0 {
			return nil, false, nil
		}
		brs, markerFound = brs[i+1:], true
	}
	return brs[:min(len(brs), limit)], markerFound, nil
}
