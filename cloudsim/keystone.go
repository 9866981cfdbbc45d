package cloudsim

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
)

type project struct {
	ID, Name, DomainID string
}

type user struct {
	ID, Name, DomainID string
	// Roles per project id.
	Roles map[string][]string
}

type token struct {
	ID        string
	UserID    string
	ProjectID string // "" = unscoped
	Roles     []string
	Admin     bool
	Issued    time.Time
	Expires   time.Time
}

// Well-known identities of every simulator.
const (
	AdminProjectID = "6c3d2b1a9f8e4d7c8b6a5f4e3d2c1b0a"
	DemoProjectID  = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
	AdminUserID    = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
	DemoUserID     = "d3e4f5a6b7c80912a3b4c5d6e7f80912"
	// AltProjectID and AltUserID are a second ordinary project and its
	// member ("alt", password as every user's), for tests of isolation
	// between projects.
	AltProjectID  = "7a1b2c3d4e5f60718293a4b5c6d7e8f9"
	AltUserID     = "e5f6a7b8c9d00112b3c4d5e6f7a80913"
	DefaultDomain = "default"
	adminRoleID   = "2a1f0b3c4d5e6f708192a3b4c5d6e7f8"
	memberRoleID  = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
	readerRoleID  = "5e4d3c2b1a0f9e8d7c6b5a4938271605"
)

var roleIDs = map[string]string{"admin": adminRoleID, "member": memberRoleID, "reader": readerRoleID}

func (s *Sim) seedIdentity() {
	s.projects = map[string]*project{
		AdminProjectID: {ID: AdminProjectID, Name: "admin", DomainID: DefaultDomain},
		DemoProjectID:  {ID: DemoProjectID, Name: "demo", DomainID: DefaultDomain},
		AltProjectID:   {ID: AltProjectID, Name: "alt", DomainID: DefaultDomain},
	}
	s.users = map[string]*user{
		AdminUserID: {ID: AdminUserID, Name: "admin", DomainID: DefaultDomain, Roles: map[string][]string{
			AdminProjectID: {"admin", "member", "reader"}, DemoProjectID: {"admin", "member", "reader"}}},
		DemoUserID: {ID: DemoUserID, Name: "demo", DomainID: DefaultDomain, Roles: map[string][]string{
			DemoProjectID: {"member", "reader"}}},
		AltUserID: {ID: AltUserID, Name: "alt", DomainID: DefaultDomain, Roles: map[string][]string{
			AltProjectID: {"member", "reader"}}},
	}
}

func (s *Sim) registerIdentity(mux *http.ServeMux) {
	noAuth := routeOpts{noAuth: true}
	versions := func(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
		writeJSON(w, 300, map[string]any{"versions": map[string]any{"values": []any{s.identityVersion()}}})
		return nil
	}
	s.handle(mux, svcIdentity, "GET "+identityPrefix+"/{$}", versions, noAuth)
	s.handle(mux, svcIdentity, "GET "+identityPrefix, versions, noAuth)
	version := func(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
		writeJSON(w, 200, map[string]any{"version": s.identityVersion()})
		return nil
	}
	s.handle(mux, svcIdentity, "GET "+identityPrefix+"/v3", version, noAuth)
	s.handle(mux, svcIdentity, "GET "+identityPrefix+"/v3/{$}", version, noAuth)
	s.handle(mux, svcIdentity, "POST "+identityPrefix+"/v3/auth/tokens", s.issueToken, noAuth)
	s.handle(mux, svcIdentity, "GET "+identityPrefix+"/v3/auth/tokens", s.validateToken)
	s.handle(mux, svcIdentity, "HEAD "+identityPrefix+"/v3/auth/tokens", s.validateToken)
	s.handle(mux, svcIdentity, "DELETE "+identityPrefix+"/v3/auth/tokens", s.revokeToken)
}

func (s *Sim) identityVersion() map[string]any {
	return map[string]any{
		"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
		"links":       []any{map[string]any{"rel": "self", "href": s.AuthURL() + "/"}},
		"media-types": []any{map[string]any{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}},
	}
}

type authRequest struct {
	Auth struct {
		Identity struct {
			Methods  []string `json:"methods"`
			Password *struct {
				User struct {
					ID       string `json:"id"`
					Name     string `json:"name"`
					Password string `json:"password"`
					Domain   *struct {
						ID   string `json:"id"`
						Name string `json:"name"`
					} `json:"domain"`
				} `json:"user"`
			} `json:"password"`
			Token *struct {
				ID string `json:"id"`
			} `json:"token"`
		} `json:"identity"`
		Scope *struct {
			Project *struct {
				ID     string `json:"id"`
				Name   string `json:"name"`
				Domain *struct {
					ID   string `json:"id"`
					Name string `json:"name"`
				} `json:"domain"`
			} `json:"project"`
			Domain *struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"domain"`
			System any `json:"system"`
		} `json:"scope"`
	} `json:"auth"`
}

func domainMatches(id, name string) bool {
	return (id != "" && strings.EqualFold(id, DefaultDomain)) || (name != "" && strings.EqualFold(name, "Default"))
}

func (s *Sim) issueToken(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var req authRequest
	if e := decodeBody(r, &req); e != nil {
		return e
	}
	id := req.Auth.Identity
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	var u *user
	switch {
	case id.Password != nil:
		pu := id.Password.User
		switch {
		case pu.ID != "":
			u = s.users[pu.ID]
		case pu.Name != "":
			if pu.Domain == nil || !domainMatches(pu.Domain.ID, pu.Domain.Name) {
				return errf(401, "The request you have made requires authentication.")
			}
			for _, cand := range s.users {
				if cand.Name == pu.Name {
					u = cand
				}
			}
		default:
			return errf(400, "Expecting to find id or name in user - the server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.")
		}
		if u == nil || pu.Password != s.cfg.Password {
			return errf(401, "The request you have made requires authentication.")
		}
	case id.Token != nil:
		t := s.tokens[id.Token.ID]
		if t == nil || now.After(t.Expires) {
			return errf(401, "The request you have made requires authentication.")
		}
		u = s.users[t.UserID]
	default:
		return errf(400, "Expecting to find identity in auth - the server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.")
	}
	tok := &token{ID: newTokenID(), UserID: u.ID, Issued: now, Expires: now.Add(s.cfg.TokenTTL)}
	s.evictTokensLocked(now)
	var p *project
	if sc := req.Auth.Scope; sc != nil && sc.Project != nil {
		switch {
		case sc.Project.ID != "":
			p = s.projects[sc.Project.ID]
		case sc.Project.Name != "" && sc.Project.Domain != nil && domainMatches(sc.Project.Domain.ID, sc.Project.Domain.Name):
			for _, cand := range s.projects {
				if cand.Name == sc.Project.Name {
					p = cand
				}
			}
		}
		if p == nil || len(u.Roles[p.ID]) == 0 {
			return errf(401, "The request you have made requires authentication.")
		}
		tok.ProjectID = p.ID
		tok.Roles = u.Roles[p.ID]
		for _, r := range tok.Roles {
			if r == "admin" {
				tok.Admin = true
			}
		}
	}
	s.tokens[tok.ID] = tok
	s.tokenOrder.push(tok)
	w.Header().Set("X-Subject-Token", tok.ID)
	writeJSON(w, 201, map[string]any{"token": s.tokenBody(tok, !r.URL.Query().Has("nocatalog"))})
	return nil
}

func (s *Sim) tokenBody(t *token, catalog bool) map[string]any {
	u := s.users[t.UserID]
	body := map[string]any{
		"methods": []string{"password"}, "expires_at": t.Expires.UTC().Format("2006-01-02T15:04:05.000000Z"),
		"issued_at": t.Issued.UTC().Format("2006-01-02T15:04:05.000000Z"), "audit_ids": []string{t.ID[:22]},
		"user": map[string]any{"id": u.ID, "name": u.Name, "domain": map[string]any{"id": DefaultDomain, "name": "Default"},
			"password_expires_at": nil},
		"is_domain": false,
	}
	if t.ProjectID != "" {
		p := s.projects[t.ProjectID]
		body["project"] = map[string]any{"id": p.ID, "name": p.Name, "domain": map[string]any{"id": DefaultDomain, "name": "Default"}}
		roles := make([]any, 0, len(t.Roles))
		for _, r := range t.Roles {
			roles = append(roles, map[string]any{"id": roleIDs[r], "name": r})
		}
		body["roles"] = roles
		if catalog {
			body["catalog"] = s.catalog(p.ID)
		}
	}
	return body
}

// catalog lists the simulated services: compute versioned, volume
// versioned with the project id, image unversioned, identity.
func (s *Sim) catalog(projectID string) []any {
	entry := func(typ, name, url string) map[string]any {
		var eps []any
		for _, iface := range []string{"public", "internal", "admin"} {
			eps = append(eps, map[string]any{"id": newTokenID()[:32], "interface": iface, "region": s.cfg.Region,
				"region_id": s.cfg.Region, "url": url})
		}
		return map[string]any{"type": typ, "name": name, "id": newTokenID()[:32], "endpoints": eps}
	}
	return []any{
		entry("compute", "nova", s.baseURL+computePrefix),
		entry("volumev3", "cinderv3", s.baseURL+volumePrefix+"/"+projectID),
		entry("block-storage", "cinder", s.baseURL+volumePrefix+"/"+projectID),
		entry("image", "glance", s.baseURL+imagePrefix),
		entry("identity", "keystone", s.AuthURL()),
	}
}

// authenticate checks X-Auth-Token. Callers must not hold s.mu.
func (s *Sim) authenticate(r *http.Request) (*token, *apiError) {
	id := r.Header.Get("X-Auth-Token")
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tokens[id]
	if id == "" || t == nil || s.clock.Now().After(t.Expires) {
		return nil, errf(401, "The request you have made requires authentication.")
	}
	return t, nil
}

func (s *Sim) validateToken(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tokens[r.Header.Get("X-Subject-Token")]
	if t == nil || s.clock.Now().After(t.Expires) {
		return errf(404, "Could not find token: %s.", r.Header.Get("X-Subject-Token"))
	}
	if e := tokenPolicy(rc, t, "identity:validate_token"); e != nil {
		return e
	}
	w.Header().Set("X-Subject-Token", t.ID)
	if r.Method == http.MethodHead {
		w.WriteHeader(200)
		return nil
	}
	writeJSON(w, 200, map[string]any{"token": s.tokenBody(t, !r.URL.Query().Has("nocatalog"))})
	return nil
}

func (s *Sim) revokeToken(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := r.Header.Get("X-Subject-Token")
	t := s.tokens[id]
	if t == nil {
		return errf(404, "Could not find token: %s.", id)
	}
	if e := tokenPolicy(rc, t, "identity:revoke_token"); e != nil {
		return e
	}
	delete(s.tokens, id)
	w.WriteHeader(204)
	return nil
}

// tokenPolicy is Keystone's rule for validating and revoking a token:
// an admin, or the user the token was issued to.
func tokenPolicy(rc *reqCtx, t *token, action string) *apiError {
	if rc.isAdmin() || (rc.Token != nil && rc.Token.UserID == t.UserID) {
		return nil
	}
	return errf(403, "You are not authorized to perform the requested action: %s.", action)
}

// evictTokensLocked forgets expired and revoked tokens, oldest first, and
// then the oldest valid ones beyond MaxTokens, so that logins cannot grow
// memory without bound. Tokens all live TokenTTL, so issue order is
// expiry order. Callers hold s.mu.
func (s *Sim) evictTokensLocked(now time.Time) {
	for s.tokenOrder.len() > 0 {
		t := s.tokenOrder.front()
		live := s.tokens[t.ID] == t
		// The queue may hold revoked tokens behind a valid one; cap it
		// too, so that login/revoke churn cannot grow it either.
		if live && !now.After(t.Expires) && len(s.tokens) < s.cfg.MaxTokens && s.tokenOrder.len() <= 2*s.cfg.MaxTokens {
			return
		}
		s.tokenOrder.pop()
		if live {
			delete(s.tokens, t.ID)
		}
	}
}

// ExpireTokens makes every issued token invalid (for tests of re-auth).
func (s *Sim) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		t.Expires = s.clock.Now().Add(-time.Second)
	}
}

func newTokenID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "gAAAA" + hex.EncodeToString(b)
}
