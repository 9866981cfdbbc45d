package ops_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/ops"
)

// clearOSEnv empties every OS_* variable for the test, so that the
// machine's own settings cannot leak in.
func clearOSEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "OS_") {
			t.Setenv(k, "")
		}
	}
}

func setEnv(t *testing.T, env map[string]string) {
	clearOSEnv(t)
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// keystoneBody is the token request gophercloud would send for a.
func keystoneBody(t *testing.T, a ops.Auth) string {
	t.Helper()
	o := a.Options
	scope, err := o.ToTokenV3ScopeMap()
	if err != nil {
		t.Fatalf("scope: %v", err)
	}
	body, err := o.ToTokenV3CreateMap(scope)
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// An openrc as Horizon and devstack write it, and each other form the
// openstack CLI accepts, becomes the Keystone request that CLI would send.
func TestAuthFromEnvForms(t *testing.T) {
	const url = "https://keystone.example.com:5000/v3"
	for _, tc := range []struct {
		name   string
		env    map[string]string
		body   string // the Keystone token request
		region string
		avail  gophercloud.Availability
	}{
		{"openrc with project and user domain names",
			map[string]string{"OS_AUTH_URL": url, "OS_USERNAME": "demo", "OS_PASSWORD": "pw", "OS_PROJECT_NAME": "demo",
				"OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default", "OS_REGION_NAME": "RegionTwo"},
			`{"auth":{"identity":{"methods":["password"],"password":{"user":{"domain":{"name":"Default"},"name":"demo","password":"pw"}}},"scope":{"project":{"domain":{"name":"Default"},"name":"demo"}}}}`,
			"RegionTwo", gophercloud.AvailabilityPublic},
		{"domain ids, user and project domains differ",
			map[string]string{"OS_AUTH_URL": url, "OS_USERNAME": "u", "OS_PASSWORD": "pw", "OS_PROJECT_NAME": "p",
				"OS_USER_DOMAIN_ID": "ud", "OS_PROJECT_DOMAIN_ID": "pd"},
			`{"auth":{"identity":{"methods":["password"],"password":{"user":{"domain":{"id":"ud"},"name":"u","password":"pw"}}},"scope":{"project":{"domain":{"id":"pd"},"name":"p"}}}}`,
			"", gophercloud.AvailabilityPublic},
		{"Horizon's openrc: project id and name, user domain name, project domain id",
			map[string]string{"OS_AUTH_URL": url, "OS_USERNAME": "u", "OS_PASSWORD": "pw", "OS_PROJECT_ID": "pid", "OS_PROJECT_NAME": "p",
				"OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_ID": "default", "OS_INTERFACE": "public", "OS_IDENTITY_API_VERSION": "3"},
			`{"auth":{"identity":{"methods":["password"],"password":{"user":{"domain":{"name":"Default"},"name":"u","password":"pw"}}},"scope":{"project":{"id":"pid"}}}}`,
			"", gophercloud.AvailabilityPublic},
		{"project id alone",
			map[string]string{"OS_AUTH_URL": url, "OS_USERNAME": "u", "OS_PASSWORD": "pw", "OS_PROJECT_ID": "pid", "OS_USER_DOMAIN_NAME": "Default"},
			`{"auth":{"identity":{"methods":["password"],"password":{"user":{"domain":{"name":"Default"},"name":"u","password":"pw"}}},"scope":{"project":{"id":"pid"}}}}`,
			"", gophercloud.AvailabilityPublic},
		{"old tenant name with OS_DOMAIN_NAME for both domains",
			map[string]string{"OS_AUTH_URL": url, "OS_USERNAME": "u", "OS_PASSWORD": "pw", "OS_TENANT_NAME": "t", "OS_DOMAIN_NAME": "Default"},
			`{"auth":{"identity":{"methods":["password"],"password":{"user":{"domain":{"name":"Default"},"name":"u","password":"pw"}}},"scope":{"project":{"domain":{"name":"Default"},"name":"t"}}}}`,
			"", gophercloud.AvailabilityPublic},
		{"old tenant id",
			map[string]string{"OS_AUTH_URL": url, "OS_USER_ID": "uid", "OS_PASSWORD": "pw", "OS_TENANT_ID": "tid"},
			`{"auth":{"identity":{"methods":["password"],"password":{"user":{"id":"uid","password":"pw"}}},"scope":{"project":{"id":"tid"}}}}`,
			"", gophercloud.AvailabilityPublic},
		{"user id with OS_DOMAIN_ID scoping to a project by name",
			map[string]string{"OS_AUTH_URL": url, "OS_USER_ID": "uid", "OS_PASSWORD": "pw", "OS_PROJECT_NAME": "p", "OS_DOMAIN_ID": "d"},
			`{"auth":{"identity":{"methods":["password"],"password":{"user":{"id":"uid","password":"pw"}}},"scope":{"project":{"domain":{"id":"d"},"name":"p"}}}}`,
			"", gophercloud.AvailabilityPublic},
		{"domain scope",
			map[string]string{"OS_AUTH_URL": url, "OS_USERNAME": "admin", "OS_PASSWORD": "pw", "OS_USER_DOMAIN_NAME": "Default", "OS_DOMAIN_NAME": "Default"},
			`{"auth":{"identity":{"methods":["password"],"password":{"user":{"domain":{"name":"Default"},"name":"admin","password":"pw"}}},"scope":{"domain":{"name":"Default"}}}}`,
			"", gophercloud.AvailabilityPublic},
		{"system scope",
			map[string]string{"OS_AUTH_URL": url, "OS_USERNAME": "admin", "OS_PASSWORD": "pw", "OS_USER_DOMAIN_NAME": "Default", "OS_SYSTEM_SCOPE": "all"},
			`{"auth":{"identity":{"methods":["password"],"password":{"user":{"domain":{"name":"Default"},"name":"admin","password":"pw"}}},"scope":{"system":{"all":true}}}}`,
			"", gophercloud.AvailabilityPublic},
		{"internal interface via OS_INTERFACE",
			map[string]string{"OS_AUTH_URL": url, "OS_USER_ID": "uid", "OS_PASSWORD": "pw", "OS_PROJECT_ID": "p", "OS_INTERFACE": "internal"},
			`{"auth":{"identity":{"methods":["password"],"password":{"user":{"id":"uid","password":"pw"}}},"scope":{"project":{"id":"p"}}}}`,
			"", gophercloud.AvailabilityInternal},
		{"admin interface via the older OS_ENDPOINT_TYPE",
			map[string]string{"OS_AUTH_URL": url, "OS_USER_ID": "uid", "OS_PASSWORD": "pw", "OS_PROJECT_ID": "p", "OS_ENDPOINT_TYPE": "adminURL"},
			`{"auth":{"identity":{"methods":["password"],"password":{"user":{"id":"uid","password":"pw"}}},"scope":{"project":{"id":"p"}}}}`,
			"", gophercloud.AvailabilityAdmin},
		{"application credential by id",
			map[string]string{"OS_AUTH_URL": url, "OS_AUTH_TYPE": "v3applicationcredential", "OS_APPLICATION_CREDENTIAL_ID": "acid",
				"OS_APPLICATION_CREDENTIAL_SECRET": "s", "OS_PROJECT_NAME": "ignored", "OS_REGION_NAME": "R"},
			`{"auth":{"identity":{"application_credential":{"id":"acid","secret":"s"},"methods":["application_credential"]}}}`,
			"R", gophercloud.AvailabilityPublic},
		{"application credential by name within a user",
			map[string]string{"OS_AUTH_URL": url, "OS_AUTH_TYPE": "v3applicationcredential", "OS_APPLICATION_CREDENTIAL_NAME": "ci",
				"OS_APPLICATION_CREDENTIAL_SECRET": "s", "OS_USERNAME": "u", "OS_USER_DOMAIN_NAME": "Default"},
			`{"auth":{"identity":{"application_credential":{"name":"ci","secret":"s","user":{"domain":{"name":"Default"},"name":"u"}},"methods":["application_credential"]}}}`,
			"", gophercloud.AvailabilityPublic},
		{"application credential without OS_AUTH_TYPE",
			map[string]string{"OS_AUTH_URL": url, "OS_APPLICATION_CREDENTIAL_ID": "acid", "OS_APPLICATION_CREDENTIAL_SECRET": "s"},
			`{"auth":{"identity":{"application_credential":{"id":"acid","secret":"s"},"methods":["application_credential"]}}}`,
			"", gophercloud.AvailabilityPublic},
		{"token scoped by project name; the openrc's user settings are not sent",
			map[string]string{"OS_AUTH_URL": url, "OS_AUTH_TYPE": "v3token", "OS_TOKEN": "tok", "OS_USERNAME": "u", "OS_PASSWORD": "pw",
				"OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_NAME": "p", "OS_PROJECT_DOMAIN_NAME": "Default"},
			`{"auth":{"identity":{"methods":["token"],"token":{"id":"tok"}},"scope":{"project":{"domain":{"name":"Default"},"name":"p"}}}}`,
			"", gophercloud.AvailabilityPublic},
		{"token without OS_AUTH_TYPE, project by id",
			map[string]string{"OS_AUTH_URL": url, "OS_TOKEN": "tok", "OS_PROJECT_ID": "pid"},
			`{"auth":{"identity":{"methods":["token"],"token":{"id":"tok"}},"scope":{"project":{"id":"pid"}}}}`,
			"", gophercloud.AvailabilityPublic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setEnv(t, tc.env)
			a, err := ops.AuthFromEnv()
			if err != nil {
				t.Fatal(err)
			}
			if a.Options.IdentityEndpoint != url || !a.Options.AllowReauth {
				t.Errorf("endpoint %q reauth %v", a.Options.IdentityEndpoint, a.Options.AllowReauth)
			}
			if got := keystoneBody(t, a); got != tc.body {
				t.Errorf("token request\n got %s\nwant %s", got, tc.body)
			}
			if a.Endpoint.Region != tc.region || a.Endpoint.Availability != tc.avail {
				t.Errorf("endpoint opts %+v, want region %q availability %q", a.Endpoint, tc.region, tc.avail)
			}
		})
	}
}

// writeCA writes a self-signed CA certificate and returns its path.
func writeCA(t *testing.T) string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ostask test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAuthFromEnvTLS(t *testing.T) {
	base := map[string]string{"OS_AUTH_URL": "https://k:5000/v3", "OS_USER_ID": "u", "OS_PASSWORD": "pw", "OS_PROJECT_ID": "p"}
	ca := writeCA(t)
	for _, tc := range []struct {
		name     string
		extra    map[string]string
		insecure bool
		roots    bool
	}{
		{"default verifies with the system roots", nil, false, false},
		{"OS_CACERT", map[string]string{"OS_CACERT": ca}, false, true},
		{"OS_INSECURE=true", map[string]string{"OS_INSECURE": "true"}, true, false},
		{"OS_INSECURE=False", map[string]string{"OS_INSECURE": "False"}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tc.extra {
				env[k] = v
			}
			setEnv(t, env)
			a, err := ops.AuthFromEnv()
			if err != nil {
				t.Fatal(err)
			}
			if a.TLS == nil || a.TLS.InsecureSkipVerify != tc.insecure || (a.TLS.RootCAs != nil) != tc.roots {
				t.Fatalf("TLS %+v, want insecure %v, own roots %v", a.TLS, tc.insecure, tc.roots)
			}
		})
	}
}

// Incomplete or contradictory settings fail with a *ConfigError naming
// the variable, before any request.
func TestAuthFromEnvErrors(t *testing.T) {
	const url = "http://127.0.0.1:5000/v3"
	for _, tc := range []struct {
		name    string
		env     map[string]string
		setting string
	}{
		{"nothing", map[string]string{}, "OS_AUTH_URL"},
		{"no username", map[string]string{"OS_AUTH_URL": url, "OS_PASSWORD": "pw"}, "OS_USERNAME"},
		{"no password", map[string]string{"OS_AUTH_URL": url, "OS_USERNAME": "u", "OS_USER_DOMAIN_NAME": "Default"}, "OS_PASSWORD"},
		{"no user domain", map[string]string{"OS_AUTH_URL": url, "OS_USERNAME": "u", "OS_PASSWORD": "pw", "OS_PROJECT_ID": "p"}, "OS_USER_DOMAIN_NAME"},
		{"project name without its domain", map[string]string{"OS_AUTH_URL": url, "OS_USERNAME": "u", "OS_PASSWORD": "pw",
			"OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_NAME": "p"}, "OS_PROJECT_DOMAIN_NAME"},
		{"token type without a token", map[string]string{"OS_AUTH_URL": url, "OS_AUTH_TYPE": "v3token"}, "OS_TOKEN"},
		{"application credential without a secret", map[string]string{"OS_AUTH_URL": url, "OS_AUTH_TYPE": "v3applicationcredential",
			"OS_APPLICATION_CREDENTIAL_ID": "x"}, "OS_APPLICATION_CREDENTIAL_SECRET"},
		{"application credential name without a user", map[string]string{"OS_AUTH_URL": url, "OS_AUTH_TYPE": "v3applicationcredential",
			"OS_APPLICATION_CREDENTIAL_NAME": "x", "OS_APPLICATION_CREDENTIAL_SECRET": "s"}, "OS_USERNAME"},
		{"unsupported auth type", map[string]string{"OS_AUTH_URL": url, "OS_AUTH_TYPE": "v3oidcpassword"}, "OS_AUTH_TYPE"},
		{"bad interface", map[string]string{"OS_AUTH_URL": url, "OS_USER_ID": "u", "OS_PASSWORD": "pw", "OS_INTERFACE": "private"}, "OS_INTERFACE"},
		{"bad OS_INSECURE", map[string]string{"OS_AUTH_URL": url, "OS_USER_ID": "u", "OS_PASSWORD": "pw", "OS_INSECURE": "maybe"}, "OS_INSECURE"},
		{"auth url without a scheme", map[string]string{"OS_AUTH_URL": "keystone:5000/v3", "OS_USER_ID": "u", "OS_PASSWORD": "pw"}, "OS_AUTH_URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setEnv(t, tc.env)
			_, err := ops.AuthFromEnv()
			var ce *ops.ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, ops.ErrConfig) {
				t.Fatalf("err = %v, want a *ConfigError", err)
			}
			if ce.Setting != tc.setting || ce.Source != "OS_* environment" {
				t.Fatalf("err names %q of %q, want %q: %v", ce.Setting, ce.Source, tc.setting, err)
			}
		})
	}
}

func writeClouds(t *testing.T, doc string) {
	path := filepath.Join(t.TempDir(), "clouds.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	clearOSEnv(t)
	t.Setenv("OS_CLIENT_CONFIG_FILE", path)
}

func TestAuthFromClouds(t *testing.T) {
	writeClouds(t, `clouds:
  noauthurl:
    auth:
      username: demo
      password: secret
      project_name: demo
      user_domain_name: Default
      project_domain_name: Default
  notaurl:
    auth:
      auth_url: keystone.example.com
  tokened:
    auth_type: v3token
    region_name: R1
    auth:
      auth_url: https://keystone.example.com/v3
      token: tok
      user_domain_name: Default
      project_name: p
      project_domain_name: Default
`)
	t.Run("token with leftover user settings", func(t *testing.T) {
		a, err := ops.AuthFromClouds("tokened")
		if err != nil {
			t.Fatal(err)
		}
		want := `{"auth":{"identity":{"methods":["token"],"token":{"id":"tok"}},"scope":{"project":{"domain":{"name":"Default"},"name":"p"}}}}`
		if got := keystoneBody(t, a); got != want || a.Endpoint.Region != "R1" {
			t.Fatalf("token request %s region %q", got, a.Endpoint.Region)
		}
	})
	for _, tc := range []struct{ cloud, setting string }{
		{"noauthurl", "auth_url"},
		{"notaurl", "auth_url"},
		{"absent", ""},
		{"", "cloud name"},
	} {
		t.Run("error "+tc.cloud, func(t *testing.T) {
			_, err := ops.AuthFromClouds(tc.cloud)
			var ce *ops.ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, ops.ErrConfig) || ce.Setting != tc.setting {
				t.Fatalf("err = %#v, want a *ConfigError on %q", err, tc.setting)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("want one line: %q", err)
			}
		})
	}
}

// The forms cloudsim's Keystone supports (password and token; it has no
// application credentials) log in for real.
func TestAuthFromEnvAgainstCloudsim(t *testing.T) {
	ctx := ctxT(t)
	sim, err := cloudsim.Start(ctx, cloudsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	c := sim.DemoCredentials()
	dial := func(t *testing.T) *ops.Cloud {
		t.Helper()
		a, err := ops.AuthFromEnv()
		if err != nil {
			t.Fatal(err)
		}
		cloud, err := ops.Dial(ctx, a, ops.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cloud.Close() })
		if _, err := cloud.Compute.ProviderClient.GetAuthResult().ExtractTokenID(); err != nil {
			t.Fatal(err)
		}
		return cloud
	}
	password := map[string]string{"OS_AUTH_URL": c.AuthURL, "OS_USERNAME": c.Username, "OS_PASSWORD": c.Password,
		"OS_PROJECT_NAME": c.ProjectName, "OS_USER_DOMAIN_NAME": c.DomainName, "OS_PROJECT_DOMAIN_NAME": c.DomainName,
		"OS_REGION_NAME": c.Region}
	var token string
	t.Run("openrc password", func(t *testing.T) {
		setEnv(t, password)
		cloud := dial(t)
		token = cloud.Compute.ProviderClient.Token()
	})
	for _, tc := range []struct {
		name string
		env  map[string]string
	}{
		{"project id and user domain id", map[string]string{"OS_AUTH_URL": c.AuthURL, "OS_USERNAME": c.Username, "OS_PASSWORD": c.Password,
			"OS_PROJECT_ID": cloudsim.DemoProjectID, "OS_USER_DOMAIN_ID": cloudsim.DefaultDomain}},
		{"tenant name with OS_DOMAIN_NAME", map[string]string{"OS_AUTH_URL": c.AuthURL, "OS_USERNAME": c.Username, "OS_PASSWORD": c.Password,
			"OS_TENANT_NAME": c.ProjectName, "OS_DOMAIN_NAME": c.DomainName}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setEnv(t, tc.env)
			dial(t)
		})
	}
	t.Run("v3token from the password login", func(t *testing.T) {
		if token == "" {
			t.Fatal("no token from the password login")
		}
		setEnv(t, map[string]string{"OS_AUTH_URL": c.AuthURL, "OS_AUTH_TYPE": "v3token", "OS_TOKEN": token,
			"OS_PROJECT_NAME": c.ProjectName, "OS_PROJECT_DOMAIN_NAME": c.DomainName})
		dial(t)
	})
}
