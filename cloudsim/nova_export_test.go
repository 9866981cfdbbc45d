package cloudsim

import (
	"net/http"
	"time"
)

// NovaSeedServersForTest adds n ACTIVE servers of the demo project without
// going through the API, all stamped with the current time. It returns
// their ids, oldest first.
func (s *Sim) NovaSeedServersForTest(n int) []string {
	defer s.lockNow()()
	now := s.clock.Now()
	fl := s.flavors[0]
	rc := &reqCtx{Token: &token{ProjectID: DemoProjectID, UserID: DemoUserID}, RequestID: "req-seed"}
	ids := make([]string, 0, n)
	for i := 0; i < n; i++ {
		cr := &createReq{name: "seed", maxCount: 1, minCount: 1, networks: "auto"}
		sv := s.newServerLocked(rc, cr, fl, "r-seed", 0, now)
		sv.VMState, sv.TaskState, sv.PowerState = vmActive, "", 1
		sv.Host, sv.AZ, sv.LaunchedAt = computeHosts[0], "nova", now
		ids = append(ids, sv.ID)
	}
	return ids
}

// NovaTouchServersForTest stamps the given servers as changed now.
func (s *Sim) NovaTouchServersForTest(ids []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	for _, id := range ids {
		if sv := s.servers[id]; sv != nil {
			sv.Metadata["touched"] = now.Format(time.RFC3339Nano)
			s.touchServer(sv, now)
		}
	}
}

// NovaNewVolumeForTest creates an available volume of the demo project
// and returns its id.
func (s *Sim) NovaNewVolumeForTest(name string, size int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	v := s.newVolumeLocked(DemoProjectID, DemoUserID, name, size, "", nil, now)
	s.setVolumeStatus(v, "available", now)
	return v.ID
}

// NovaDeleteServersForTest finishes the deletion of the given servers at
// once, as if their delete walks had ended: they become DELETED records.
func (s *Sim) NovaDeleteServersForTest(ids []string) {
	defer s.lockNow()()
	now := s.clock.Now()
	for _, id := range ids {
		if sv := s.servers[id]; sv != nil && !sv.Deleted {
			s.finishDelete(sv, now)
		}
	}
}

// TokenCountForTest is the number of tokens the simulator holds.
func (s *Sim) TokenCountForTest() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tokens)
}

// PanicHandlerForTest serves one route per service that panics, through
// the simulator's router, at GET <service prefix>/panic.
func (s *Sim) PanicHandlerForTest() http.Handler {
	mux := http.NewServeMux()
	boom := func(w http.ResponseWriter, r *http.Request, rc *reqCtx) error { panic("boom") }
	noAuth := routeOpts{noAuth: true}
	s.handle(mux, svcCompute, "GET "+computePrefix+"/panic", boom, noAuth)
	s.handle(mux, svcVolume, "GET "+volumePrefix+"/panic", boom, noAuth)
	s.handle(mux, svcImage, "GET "+imagePrefix+"/panic", boom, noAuth)
	s.handle(mux, svcIdentity, "GET "+identityPrefix+"/panic", boom, noAuth)
	return mux
}
