package cloudsim

import (
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"
)

// DefaultCloudName is the cloud name `ostask sim` writes into clouds.yaml.
const DefaultCloudName = "ostask-sim"

// CloudsYAML returns a clouds.yaml document with one cloud, name, that
// logs in as the demo user (member of project demo), as name+"-admin",
// one that logs in as admin, and as name+"-alt", one that logs in as the
// alt user (member of project alt, which sees nothing of demo's). Point any OpenStack client at it with
// OS_CLIENT_CONFIG_FILE=<file> OS_CLOUD=<name>.
func (s *Sim) CloudsYAML(name string) []byte {
	cloud := func(user, project string) map[string]any {
		return map[string]any{
			"auth": map[string]any{
				"auth_url": s.AuthURL(), "username": user, "password": s.cfg.Password,
				"project_name": project, "user_domain_name": "Default", "project_domain_name": "Default",
			},
			"region_name": s.cfg.Region, "interface": "public", "identity_api_version": 3,
		}
	}
	doc := map[string]any{"clouds": map[string]any{
		name:            cloud("demo", "demo"),
		name + "-admin": cloud("admin", "admin"),
		name + "-alt":   cloud("alt", "alt"),
	}}
	out, err := yaml.Marshal(doc)
	if err != nil {
		panic(fmt.Sprintf("cloudsim: marshal clouds.yaml: %v", err)) // plain maps of strings cannot fail
	}
	return out
}

// WriteCloudsYAML writes CloudsYAML(name) to path with mode 0600.
func (s *Sim) WriteCloudsYAML(path, name string) error {
	if err := os.WriteFile(path, s.CloudsYAML(name), 0o600); err != nil {
		return fmt.Errorf("cloudsim: write clouds.yaml: %w", err)
	}
	return nil
}

// Credentials are the simulator's login details, for Go clients that do
// not read clouds.yaml.
type Credentials struct {
	AuthURL, Username, Password, ProjectName, DomainName, Region string
}

// DemoCredentials logs in as the demo user in project demo (member role).
func (s *Sim) DemoCredentials() Credentials {
	return Credentials{s.AuthURL(), "demo", s.cfg.Password, "demo", "Default", s.cfg.Region}
}

// AltCredentials logs in as the alt user in project alt (member role).
func (s *Sim) AltCredentials() Credentials {
	return Credentials{s.AuthURL(), "alt", s.cfg.Password, "alt", "Default", s.cfg.Region}
}

// AdminCredentials logs in as admin in project admin (admin role).
func (s *Sim) AdminCredentials() Credentials {
	return Credentials{s.AuthURL(), "admin", s.cfg.Password, "admin", "Default", s.cfg.Region}
}
