package ops

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
)

// Auth says how to log in to a cloud.
type Auth struct {
	Options  gophercloud.AuthOptions
	Endpoint gophercloud.EndpointOpts
	TLS      *tls.Config
}

// ErrConfig is matched (errors.Is) by every *ConfigError: the cloud's
// configuration — a clouds.yaml entry or the OS_* variables — is
// missing, incomplete or contradictory. No request has been made.
var ErrConfig = errors.New("invalid cloud configuration")

// ConfigError says which setting of which source is wrong.
type ConfigError struct {
	// Source is where the settings came from: `clouds.yaml cloud "name"`
	// or "OS_* environment".
	Source string
	// Setting names the setting at fault (auth_url, OS_PROJECT_DOMAIN_NAME,
	// ...); "" when the source as a whole failed (no clouds.yaml found).
	Setting string
	// Reason says what is wrong with it.
	Reason string
	// Err is the underlying error, if any.
	Err error
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.Source)
	b.WriteString(": ")
	if e.Setting != "" {
		b.WriteString(e.Setting)
		b.WriteString(" ")
	}
	b.WriteString(e.Reason)
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Is matches ErrConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrConfig }

// Unwrap returns the underlying error.
func (e *ConfigError) Unwrap() error { return e.Err }

// AuthFromClouds reads cloud from clouds.yaml (OS_CLIENT_CONFIG_FILE, then
// ./clouds.yaml, ~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml),
// like the openstack CLI's --os-cloud. OS_REGION_NAME, OS_INTERFACE,
// OS_CACERT, OS_CERT and OS_KEY override the file, as they do for the
// openstack CLI. Every failure is a *ConfigError.
func AuthFromClouds(cloud string) (Auth, error) {
	src := fmt.Sprintf("clouds.yaml cloud %q", cloud)
	if cloud == "" {
		return Auth{}, &ConfigError{Source: "clouds.yaml", Setting: "cloud name", Reason: "is empty"}
	}
	ao, eo, tlsCfg, err := clouds.Parse(clouds.WithCloudName(cloud))
	if err != nil {
		return Auth{}, &ConfigError{Source: src, Reason: "cannot be read", Err: err}
	}
	return finishAuth(src, "auth_url", ao, eo, tlsCfg)
}

// Auth types accepted in OS_AUTH_TYPE (the keystoneauth plugin names the
// openstack CLI accepts for these methods).
const (
	authPassword = "password"
	authToken    = "token"
	authAppCred  = "v3applicationcredential"
)

var authTypes = map[string]string{
	"password": authPassword, "v3password": authPassword,
	"token": authToken, "v3token": authToken,
	"v3applicationcredential": authAppCred, "applicationcredential": authAppCred,
}

// envSource names the OS_* variables as a source in errors.
const envSource = "OS_* environment"

// AuthFromEnv reads the OS_* variables of an openrc file, as the openstack
// CLI does: OS_AUTH_URL; OS_AUTH_TYPE (password — the default —, v3password,
// token, v3token or v3applicationcredential); OS_USERNAME or OS_USER_ID
// with OS_PASSWORD and OS_USER_DOMAIN_NAME/_ID; OS_TOKEN;
// OS_APPLICATION_CREDENTIAL_ID or _NAME with _SECRET; the scope from
// OS_PROJECT_ID, or OS_PROJECT_NAME with OS_PROJECT_DOMAIN_NAME/_ID (the
// older OS_TENANT_ID/OS_TENANT_NAME too), or OS_DOMAIN_NAME/_ID alone for
// a domain scope (OS_DOMAIN_* also stand in for a missing user or project
// domain), OS_SYSTEM_SCOPE, OS_TRUST_ID; and OS_REGION_NAME, OS_INTERFACE
// (or OS_ENDPOINT_TYPE), OS_CACERT, OS_CERT, OS_KEY and OS_INSECURE.
//
// Without OS_AUTH_TYPE, OS_TOKEN selects token and
// OS_APPLICATION_CREDENTIAL_SECRET application-credential auth when no
// OS_PASSWORD is set. Every failure is a *ConfigError naming the variable.
func AuthFromEnv() (Auth, error) {
	cloud, err := envCloud(os.Getenv)
	if err != nil {
		return Auth{}, err
	}
	doc, err := json.Marshal(clouds.Clouds{Clouds: map[string]clouds.Cloud{"envvars": cloud}})
	if err != nil {
		return Auth{}, &ConfigError{Source: envSource, Reason: "cannot be encoded", Err: err}
	}
	// JSON is YAML: gophercloud's clouds.yaml parser then applies the same
	// rules (scope, domains, TLS, interface) as for a clouds.yaml entry,
	// the way openstacksdk treats the environment as a cloud "envvars".
	ao, eo, tlsCfg, err := clouds.Parse(clouds.WithCloudName("envvars"), clouds.WithCloudsYAML(bytes.NewReader(doc)))
	if err != nil {
		return Auth{}, &ConfigError{Source: envSource, Reason: "is not usable", Err: err}
	}
	return finishAuth(envSource, "OS_AUTH_URL", ao, eo, tlsCfg)
}

// envCloud maps the OS_* variables onto a clouds.yaml entry, checking
// that each auth type has what it needs.
func envCloud(getenv func(string) string) (clouds.Cloud, error) {
	first := func(names ...string) string {
		for _, n := range names {
			if v := getenv(n); v != "" {
				return v
			}
		}
		return ""
	}
	missing := func(setting, reason string) error {
		return &ConfigError{Source: envSource, Setting: setting, Reason: reason}
	}
	ai := &clouds.AuthInfo{AuthURL: getenv("OS_AUTH_URL")}
	if ai.AuthURL == "" {
		return clouds.Cloud{}, missing("OS_AUTH_URL", "is not set")
	}
	kind := authPassword
	if t := getenv("OS_AUTH_TYPE"); t != "" {
		k, ok := authTypes[strings.ToLower(t)]
		if !ok {
			return clouds.Cloud{}, missing("OS_AUTH_TYPE", fmt.Sprintf("%q is not supported (want password, v3password, token, v3token or v3applicationcredential)", t))
		}
		kind = k
	} else if getenv("OS_PASSWORD") == "" {
		switch {
		case getenv("OS_TOKEN") != "":
			kind = authToken
		case getenv("OS_APPLICATION_CREDENTIAL_SECRET") != "":
			kind = authAppCred
		}
	}
	user := func() {
		ai.Username = getenv("OS_USERNAME")
		ai.UserID = first("OS_USER_ID", "OS_USERID")
		ai.UserDomainName = getenv("OS_USER_DOMAIN_NAME")
		ai.UserDomainID = getenv("OS_USER_DOMAIN_ID")
	}
	userDomainSet := func() bool {
		return ai.UserDomainName != "" || ai.UserDomainID != "" || getenv("OS_DOMAIN_NAME") != "" || getenv("OS_DOMAIN_ID") != ""
	}
	switch kind {
	case authPassword:
		user()
		switch {
		case ai.Username == "" && ai.UserID == "":
			return clouds.Cloud{}, missing("OS_USERNAME", "is not set (nor OS_USER_ID)")
		case getenv("OS_PASSWORD") == "":
			return clouds.Cloud{}, missing("OS_PASSWORD", "is not set")
		case ai.UserID == "" && !userDomainSet():
			return clouds.Cloud{}, missing("OS_USER_DOMAIN_NAME", "is not set (nor OS_USER_DOMAIN_ID or OS_DOMAIN_NAME/_ID); it says where user "+strconv.Quote(ai.Username)+" lives")
		}
		ai.Password = getenv("OS_PASSWORD")
		if ai.UserID != "" {
			// A user id names the user alone; a domain would contradict it.
			ai.Username, ai.UserDomainName, ai.UserDomainID = "", "", ""
		}
	case authToken:
		ai.Token = getenv("OS_TOKEN")
		if ai.Token == "" {
			return clouds.Cloud{}, missing("OS_TOKEN", "is not set (OS_AUTH_TYPE is token)")
		}
	case authAppCred:
		ai.ApplicationCredentialID = getenv("OS_APPLICATION_CREDENTIAL_ID")
		ai.ApplicationCredentialName = getenv("OS_APPLICATION_CREDENTIAL_NAME")
		ai.ApplicationCredentialSecret = getenv("OS_APPLICATION_CREDENTIAL_SECRET")
		switch {
		case ai.ApplicationCredentialSecret == "":
			return clouds.Cloud{}, missing("OS_APPLICATION_CREDENTIAL_SECRET", "is not set")
		case ai.ApplicationCredentialID == "" && ai.ApplicationCredentialName == "":
			return clouds.Cloud{}, missing("OS_APPLICATION_CREDENTIAL_ID", "is not set (nor OS_APPLICATION_CREDENTIAL_NAME)")
		case ai.ApplicationCredentialID == "":
			// A credential is named within its user.
			user()
			if ai.Username == "" && ai.UserID == "" {
				return clouds.Cloud{}, missing("OS_USERNAME", "is not set (nor OS_USER_ID); OS_APPLICATION_CREDENTIAL_NAME is looked up within a user")
			}
			if ai.UserID == "" && !userDomainSet() {
				return clouds.Cloud{}, missing("OS_USER_DOMAIN_NAME", "is not set (nor OS_USER_DOMAIN_ID or OS_DOMAIN_NAME/_ID)")
			}
		}
	}
	// Application credentials carry their own project; Keystone refuses a
	// scope alongside them, so none is read.
	if kind != authAppCred {
		ai.ProjectID = first("OS_PROJECT_ID", "OS_TENANT_ID")
		ai.ProjectName = first("OS_PROJECT_NAME", "OS_TENANT_NAME")
		ai.ProjectDomainName = getenv("OS_PROJECT_DOMAIN_NAME")
		ai.ProjectDomainID = getenv("OS_PROJECT_DOMAIN_ID")
		ai.SystemScope = getenv("OS_SYSTEM_SCOPE")
		ai.TrustID = getenv("OS_TRUST_ID")
		if ai.ProjectID == "" && ai.ProjectName != "" && ai.ProjectDomainName == "" && ai.ProjectDomainID == "" &&
			getenv("OS_DOMAIN_NAME") == "" && getenv("OS_DOMAIN_ID") == "" {
			return clouds.Cloud{}, missing("OS_PROJECT_DOMAIN_NAME", "is not set (nor OS_PROJECT_DOMAIN_ID or OS_DOMAIN_NAME/_ID); it says where project "+strconv.Quote(ai.ProjectName)+" lives")
		}
	}
	// OS_DOMAIN_* stand in for a missing user or project domain, and
	// alone they scope the token to the domain.
	ai.DomainName = getenv("OS_DOMAIN_NAME")
	ai.DomainID = getenv("OS_DOMAIN_ID")
	cloud := clouds.Cloud{AuthInfo: ai, RegionName: getenv("OS_REGION_NAME"),
		Interface: getenv("OS_INTERFACE"), EndpointType: getenv("OS_ENDPOINT_TYPE"),
		CACertFile: getenv("OS_CACERT"), ClientCertFile: getenv("OS_CERT"), ClientKeyFile: getenv("OS_KEY")}
	for _, v := range []struct{ name, val string }{{"OS_INTERFACE", cloud.Interface}, {"OS_ENDPOINT_TYPE", cloud.EndpointType}} {
		switch v.val {
		case "", "public", "publicURL", "internal", "internalURL", "admin", "adminURL":
		default:
			return clouds.Cloud{}, missing(v.name, fmt.Sprintf("%q is not an interface (want public, internal or admin)", v.val))
		}
	}
	if v := getenv("OS_INSECURE"); v != "" {
		insecure, err := parseBool(v)
		if err != nil {
			return clouds.Cloud{}, missing("OS_INSECURE", fmt.Sprintf("%q is not a boolean", v))
		}
		verify := !insecure
		cloud.Verify = &verify
	}
	return cloud, nil
}

// parseBool reads booleans the way openstack CLI users write them.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "t", "true", "y", "yes", "on":
		return true, nil
	case "0", "f", "false", "n", "no", "off":
		return false, nil
	}
	return false, strconv.ErrSyntax
}

// finishAuth checks the auth URL and settles what gophercloud would
// otherwise refuse: a token or a user id names its user by itself, and a
// user domain given both by id and by name is taken by id.
func finishAuth(src, urlSetting string, ao gophercloud.AuthOptions, eo gophercloud.EndpointOpts, tlsCfg *tls.Config) (Auth, error) {
	if ao.IdentityEndpoint == "" {
		return Auth{}, &ConfigError{Source: src, Setting: urlSetting, Reason: "is missing: the cloud's Keystone URL, e.g. https://keystone.example.com:5000/v3"}
	}
	u, err := url.Parse(ao.IdentityEndpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Auth{}, &ConfigError{Source: src, Setting: urlSetting, Reason: fmt.Sprintf("%q is not an http(s) URL", ao.IdentityEndpoint)}
	}
	switch {
	case ao.TokenID != "" && ao.Password == "":
		ao.Username, ao.UserID, ao.DomainID, ao.DomainName = "", "", "", ""
	case ao.UserID != "":
		// The scope keeps its own domain (clouds.Parse builds Scope);
		// these are the user's, which a user id makes redundant.
		ao.DomainID, ao.DomainName = "", ""
	case ao.DomainID != "" && ao.DomainName != "":
		ao.DomainName = ""
	}
	ao.AllowReauth = true
	return Auth{Options: ao, Endpoint: eo, TLS: tlsCfg}, nil
}
