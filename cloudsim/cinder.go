package cloudsim

import "net/http"

// registerVolume registers the Cinder routes.
func (s *Sim) registerVolume(mux *http.ServeMux) {}
