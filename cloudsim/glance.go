package cloudsim

import "net/http"

// registerImage registers the Glance routes.
func (s *Sim) registerImage(mux *http.ServeMux) {}

func (s *Sim) seedImages() {}
