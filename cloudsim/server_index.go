package cloudsim

import (
	"cmp"
	"slices"
	"time"
)

// serverIndex holds servers in creation order. A deleted server stays as
// a tombstone (its Deleted flag) until tombstones are half the slice, so
// adding and removing are amortised O(1), the slice stays sorted by seq
// for marker lookups, and a scan costs O(live servers), never O(deleted
// rows).
type serverIndex struct {
	list []*server
	dead int
}

func (x *serverIndex) add(sv *server) { x.list = append(x.list, sv) }

// removed notes that one of the servers has been deleted.
func (x *serverIndex) removed() {
	x.dead++
	if x.dead > 32 && 2*x.dead > len(x.list) {
		x.list = slices.DeleteFunc(x.list, func(sv *server) bool { return sv.Deleted }) // zeroes the tail
		x.dead = 0
	}
}

// live returns the servers not deleted, oldest first.
func (x *serverIndex) live() []*server {
	out := make([]*server, 0, len(x.list)-x.dead)
	for _, sv := range x.list {
		if !sv.Deleted {
			out = append(out, sv)
		}
	}
	return out
}

// fifo is a queue whose memory follows its length: popped slots are
// cleared and the backing array is copied down once half of it is spent.
type fifo[T any] struct {
	list []T
	head int
}

func (q *fifo[T]) push(v T)   { q.list = append(q.list, v) }
func (q *fifo[T]) len() int   { return len(q.list) - q.head }
func (q *fifo[T]) front() T   { return q.list[q.head] }
func (q *fifo[T]) items() []T { return q.list[q.head:] }

func (q *fifo[T]) pop() T {
	v := q.list[q.head]
	var zero T
	q.list[q.head] = zero
	q.head++
	if q.head > 1024 && 2*q.head > len(q.list) {
		q.list = append([]T(nil), q.list[q.head:]...)
		q.head = 0
	}
	return v
}

// indexLive adds a new server to the live indexes. Callers hold s.mu.
func (s *Sim) indexLive(sv *server) {
	s.liveAll.add(sv)
	x := s.liveByProject[sv.ProjectID]
	if x == nil {
		x = &serverIndex{}
		s.liveByProject[sv.ProjectID] = x
	}
	x.add(sv)
}

// unindexLive notes that sv (already marked Deleted) left the live
// indexes. Callers hold s.mu.
func (s *Sim) unindexLive(sv *server) {
	s.liveAll.removed()
	if x := s.liveByProject[sv.ProjectID]; x != nil {
		x.removed()
		if len(x.list) == x.dead {
			delete(s.liveByProject, sv.ProjectID)
		}
	}
}

var emptyIndex serverIndex

// liveIndex is the index a list of project (or of all projects, "")
// reads. Callers hold s.mu.
func (s *Sim) liveIndex(project string) *serverIndex {
	if project == "" {
		return &s.liveAll
	}
	if x := s.liveByProject[project]; x != nil {
		return x
	}
	return &emptyIndex
}

// liveServers returns the live servers of project ("" for all), oldest
// first. Callers hold s.mu.
func (s *Sim) liveServers(project string) []*server { return s.liveIndex(project).live() }

// retainedServers returns the live and the retained deleted servers of
// project ("" for all), in creation order. Only lists that ask for
// deleted rows pay for them. Callers hold s.mu.
func (s *Sim) retainedServers(project string) []*server {
	out := s.liveServers(project)
	for _, sv := range s.retained.items() {
		if project == "" || sv.ProjectID == project {
			out = append(out, sv)
		}
	}
	slices.SortFunc(out, func(a, b *server) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

// purgeDeletedLocked forgets deleted servers, as Nova's archive job does:
// those deleted longer than DeletedRetention ago, and the oldest beyond
// MaxDeletedServers. Callers hold s.mu.
func (s *Sim) purgeDeletedLocked(now time.Time) {
	for s.retained.len() > 0 {
		sv := s.retained.front()
		if s.retained.len() <= s.cfg.MaxDeletedServers && now.Sub(sv.DeletedAt) < s.cfg.DeletedRetention {
			return
		}
		s.retained.pop()
		if s.servers[sv.ID] == sv {
			delete(s.servers, sv.ID)
		}
	}
}
