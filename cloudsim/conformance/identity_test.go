package conformance_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
)

// TestIdentity: password auth through clouds.yaml, the catalog gophercloud
// picks endpoints from, token validation and a 401 on a bad password.
func TestIdentity(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := be.demo

	t.Run("catalog", func(t *testing.T) {
		res, ok := s.provider.GetAuthResult().(tokens.CreateResult)
		if !ok {
			t.Fatalf("auth result is %T", s.provider.GetAuthResult())
		}
		cat, err := res.ExtractServiceCatalog()
		if err != nil {
			t.Fatal(err)
		}
		types := map[string]bool{}
		for _, e := range cat.Entries {
			types[e.Type] = true
			for _, ep := range e.Endpoints {
				if ep.URL == "" || ep.Region == "" || ep.RegionID == "" {
					t.Errorf("%s endpoint %+v lacks url or region", e.Type, ep)
				}
				switch ep.Interface {
				case "public", "internal", "admin":
				default:
					t.Errorf("%s endpoint interface %q", e.Type, ep.Interface)
				}
			}
		}
		for _, want := range []string{"compute", "image", "identity"} {
			if !types[want] {
				t.Errorf("catalog lacks %s (has %v)", want, types)
			}
		}
		if !types["volumev3"] && !types["block-storage"] {
			t.Errorf("catalog lacks a volume v3 entry (has %v)", types)
		}
		if !strings.HasSuffix(strings.TrimSuffix(s.compute.Endpoint, "/"), "/v2.1") {
			t.Errorf("compute endpoint %s is not versioned", s.compute.Endpoint)
		}
		if !regexp.MustCompile(`/v3/[0-9a-f]{32}/?$`).MatchString(s.volume.Endpoint) {
			t.Errorf("volume endpoint %s is not /v3/<project_id>", s.volume.Endpoint)
		}
		if !strings.HasSuffix(s.image.ResourceBase, "/v2/") || strings.Count(s.image.ResourceBase, "/v2/") != 1 {
			t.Errorf("image endpoint %s: gophercloud should append v2/ to an unversioned catalog URL", s.image.ResourceBase)
		}
		user, err := res.ExtractUser()
		if err != nil || user.Name != s.authOpts.Username || user.Domain.Name != "Default" {
			t.Errorf("token user %+v, %v", user, err)
		}
		project, err := res.ExtractProject()
		if err != nil || project == nil || project.Name != s.authOpts.TenantName {
			t.Errorf("token project %+v, %v", project, err)
		}
		roles, err := res.ExtractRoles()
		if err != nil || len(roles) == 0 {
			t.Errorf("token roles %+v, %v", roles, err)
		}
		if tok, err := res.ExtractToken(); err != nil || tok.ID == "" || tok.ExpiresAt.IsZero() {
			t.Errorf("token %+v, %v", tok, err)
		}
	})

	t.Run("validate", func(t *testing.T) {
		r := tokens.Get(ctx, s.identity, s.provider.Token())
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		if r.Header.Get("X-Subject-Token") != s.provider.Token() {
			t.Errorf("X-Subject-Token of validation does not echo the token")
		}
		body := obj(r.Body.(map[string]any), "token")
		checkKeys(t, "validated token", body, []string{"audit_ids", "catalog", "expires_at", "is_domain", "issued_at",
			"methods", "project", "roles", "user"}, nil)
		checkTime(t, "expires_at", body["expires_at"], reZTime, false)
		checkTime(t, "issued_at", body["issued_at"], reZTime, false)
		if u, err := r.ExtractUser(); err != nil || u.Name != s.authOpts.Username {
			t.Errorf("validated user %+v, %v", u, err)
		}
	})

	t.Run("bad password", func(t *testing.T) {
		_, err := be.login(ctx, be.cloud, clouds.WithPassword("not-the-password"))
		if !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
			t.Fatalf("login with a bad password: %v, want 401", err)
		}
		body := map[string]any{"auth": map[string]any{"identity": map[string]any{"methods": []string{"password"},
			"password": map[string]any{"user": map[string]any{"name": s.authOpts.Username, "domain": map[string]any{"name": "Default"},
				"password": "not-the-password"}}}}}
		anon := *s.identity
		anon.ProviderClient = &gophercloud.ProviderClient{HTTPClient: s.provider.HTTPClient}
		r := raw(t, &anon, "POST", "auth/tokens", "", body)
		if r.Code != 401 || r.Header.Get("X-Subject-Token") != "" {
			t.Fatalf("bad password: %s", r)
		}
		checkKeys(t, "401 body", r.JSON, []string{"error"}, nil)
		checkKeys(t, "401 error", obj(r.JSON, "error"), []string{"code", "message", "title"}, nil)
		if str(obj(r.JSON, "error"), "title") != "Unauthorized" {
			t.Errorf("401 title: %s", r.Body)
		}
	})

	t.Run("bad token", func(t *testing.T) {
		bad := *s.compute
		bad.ProviderClient = &gophercloud.ProviderClient{HTTPClient: s.provider.HTTPClient}
		bad.ProviderClient.SetToken("gAAAAA-not-a-token")
		r := raw(t, &bad, "GET", "servers", mvMain, nil)
		if r.Code != 401 {
			t.Fatalf("bad token: %s", r)
		}
		if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Keystone uri=") {
			t.Errorf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
		}
	})
}
