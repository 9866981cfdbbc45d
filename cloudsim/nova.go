package cloudsim

import "net/http"

// registerCompute registers the Nova routes. (Filled in by nova_*.go.)
func (s *Sim) registerCompute(mux *http.ServeMux) {}

func (s *Sim) seedCompute() {}
